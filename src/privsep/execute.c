/* execute: await.execute for the ruleset process, when the operator
 * started the daemon with --enable-execute. The parent forks, the child
 * becomes the ruleset's user (when root), leaves the parent's session and
 * runs /bin/sh -c COMMAND outside the jail, stdin from /dev/null, output
 * to the daemon's stderr. The exit status goes back to the routine. */
#include "privsep/execute.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "privsep/parent.h"

#define EXEC_MAX_RUNNING 16

struct job {
	pid_t pid;
	uint32_t id;
	pid_t ruleset; /* the ruleset process that asked */
};

static struct job jobs[EXEC_MAX_RUNNING];
static int njobs;

static void execute_reply(uint32_t id, int kind, int code)
{
	struct msg_executed r = { .kind = kind, .code = code };

	if (parent.ruleset.running && parent.ruleset.ch.open)
		chanev_send(&parent.ruleset.ch, MSG_R_EXECUTED, id, &r,
			    sizeof(r), -1);
}

/* In the forked child: become the ruleset's user, then exec. */
static void execute_child(const char *cmd)
{
	const struct msg_sandbox *sb = &parent.ruleset_sb;
	int devnull;

	setsid();
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || dup2(devnull, 0) < 0)
		_exit(127);
	dup2(2, 1);
	close_range(3, ~0u, 0);
	if (sb->drop_user) {
		cap_t caps = cap_get_proc();
		cap_value_t need[] = { CAP_SETUID, CAP_SETGID };

		if (caps == NULL ||
		    cap_set_flag(caps, CAP_EFFECTIVE, 2, need, CAP_SET) < 0 ||
		    cap_set_proc(caps) < 0 || setgroups(0, NULL) < 0 ||
		    setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
		    setresuid(sb->uid, sb->uid, sb->uid) < 0)
			_exit(126);
		cap_free(caps);
	}
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

int execute_request(struct child *c, const struct msg *m)
{
	char cmd[MSG_COMMAND_MAX + 1];
	pid_t pid;

	if (!parent.conf.enable_execute) {
		LOGE("the ruleset process asked to execute a command, but "
		     "--enable-execute is off");
		return -1;
	}
	memcpy(cmd, m->data, m->len);
	cmd[m->len] = '\0';
	if (memchr(m->data, '\0', m->len) != NULL) {
		LOGE("a command with a NUL byte");
		return -1;
	}
	if (njobs == EXEC_MAX_RUNNING) {
		execute_reply(m->id, EXEC_REFUSED, 0);
		return 0;
	}
	pid = fork();
	if (pid < 0) {
		LOG_RL(LOGL_ERROR, 10, "execute: fork: %s", strerror(errno));
		execute_reply(m->id, EXEC_REFUSED, 0);
		return 0;
	}
	if (pid == 0)
		execute_child(cmd);
	jobs[njobs++] = (struct job){ pid, m->id, c->pid };
	LOGI("execute (pid %d): %s", (int)pid, cmd);
	return 0;
}

/* The command's whole process group (it called setsid: its pid is the
 * group's id); the pid alone if it has not got that far yet. */
static void execute_kill(pid_t pid)
{
	if (kill(-pid, SIGKILL) < 0)
		(void)kill(pid, SIGKILL);
}

void execute_cancel(uint32_t id, pid_t ruleset)
{
	for (int i = 0; i < njobs; i++) {
		if (jobs[i].id == id && jobs[i].ruleset == ruleset) {
			LOGI("execute (pid %d): cancelled", (int)jobs[i].pid);
			execute_kill(jobs[i].pid);
			return;
		}
	}
}

void execute_kill_all(pid_t ruleset)
{
	for (int i = 0; i < njobs; i++)
		if (ruleset == 0 || jobs[i].ruleset == ruleset)
			execute_kill(jobs[i].pid);
}

bool execute_reaped(pid_t pid, int status)
{
	for (int i = 0; i < njobs; i++) {
		struct job j = jobs[i];

		if (j.pid != pid)
			continue;
		jobs[i] = jobs[--njobs];
		/* a respawned ruleset process did not ask for it */
		if (j.ruleset != parent.ruleset.pid)
			return true;
		if (WIFSIGNALED(status))
			execute_reply(j.id, EXEC_SIGNAL, WTERMSIG(status));
		else
			execute_reply(j.id, EXEC_EXIT, WEXITSTATUS(status));
		return true;
	}
	return false;
}
