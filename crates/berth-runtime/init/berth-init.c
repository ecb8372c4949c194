/*
 * berth-init: the PID 1 of a container run with `--init`, as tini is for
 * Docker. PID 1 gets no default signal handling from the kernel and inherits
 * every orphan, so a plain application there ignores SIGTERM and leaves
 * zombies. This runs the command as its child, forwards the signals it gets,
 * reaps every process that ends, and exits with the command's status
 * (128+N when signal N ended it).
 *
 * Built statically by build.rs so it runs in any image, libc or not.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child = 0;

static const int forwarded[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
                                SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

static void forward(int sig) {
    if (child > 0)
        kill(child, sig);
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (argc <= first) {
        fprintf(stderr, "berth-init: no command given\n");
        return 127;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded[i], &sa, NULL);

    pid_t pid = fork();
    if (pid < 0) {
        perror("berth-init: fork");
        return 126;
    }
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (size_t i = 0; i < NFORWARDED; i++)
            sigaction(forwarded[i], &dfl, NULL);
        execvp(argv[first], &argv[first]);
        fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    child = pid;

    int code = 0;
    for (;;) {
        int status;
        pid_t done = wait(&status);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left */
        }
        if (done == pid) {
            if (WIFEXITED(status))
                code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                code = 128 + WTERMSIG(status);
            child = 0;
            /* Reap what is already gone; the namespace ends with us anyway. */
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
            return code;
        }
    }
    return code;
}
