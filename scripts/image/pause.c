/* The pause image's program: holds a pod's sandbox until kubelet stops it. Static, so that its
 * image is this one file. As PID 1 of a pod that shares its PID namespace it also reaps the
 * orphans handed to it. Built by scripts/image.sh (`build pause`). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap(int signal_number) {
  (void)signal_number;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void stop(int signal_number) { _exit(128 + signal_number); }

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &on_stop, NULL);
  sigaction(SIGTERM, &on_stop, NULL);
  sigaction(SIGCHLD, &on_child, NULL);
  for (;;) {
    pause();
  }
}
