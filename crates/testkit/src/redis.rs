//! A throwaway redis-server on a free loopback port (in progress).
