# The one free-port picker of the shell scripts (scripts/control-plane.sh, bench/*): the rule
# of ebb_runtime::free_loopback_port (crates/runtime/src/port.rs). Source it, don't run it.
#
# A port from the kernel's ephemeral range can be taken by any outgoing connection (the API
# server dialling etcd, a benchmark's clients) between the pick and the server binding it:
# picking below that range leaves only other pickers to race with.
# shellcheck shell=bash

# Ports handed out by this shell, so two picks of one script never coincide.
ebb_ports_handed_out=" "

# ebb_free_port <variable>: sets <variable> to a loopback TCP port between 10000 and the start
# of the kernel's ephemeral range that no socket uses (per `ss`, in any state) and that this
# shell has not handed out before. A variable, not stdout: `$(…)` runs in a subshell, which
# would forget what it handed out.
ebb_free_port() {
  local _ebb_low=10000 _ebb_ceiling _ebb_port _ebb_sockets _ebb_attempt
  _ebb_ceiling=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((_ebb_ceiling >= _ebb_low + 1000)) || _ebb_ceiling=$((_ebb_low + 1000))
  for ((_ebb_attempt = 0; _ebb_attempt < 1000; _ebb_attempt++)); do
    _ebb_port=$((_ebb_low + (RANDOM * 32768 + RANDOM) % (_ebb_ceiling - _ebb_low)))
    [[ "$ebb_ports_handed_out" == *" $_ebb_port "* ]] && continue
    if ! _ebb_sockets=$(ss -Htan "sport = :$_ebb_port"); then
      echo "ebb_free_port: ss failed (Debian: apt-get install iproute2)" >&2
      return 1
    fi
    [ -z "$_ebb_sockets" ] || continue
    ebb_ports_handed_out+="$_ebb_port "
    printf -v "$1" %s "$_ebb_port"
    return 0
  done
  echo "ebb_free_port: no free loopback port between $_ebb_low and $_ebb_ceiling" >&2
  return 1
}
