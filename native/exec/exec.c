// execve(2) for Node.js: `coffer run` replaces its own process with the command it starts
// (Node.js 20 has no process.execve), so the command keeps coffer's pid, gets signals
// directly, and no Node.js process stays behind it.
//
// execve(file, argv, envp) -> errno (a number) if the exec failed; it does not return otherwise.
//
// What a child started by libuv gets, the command gets here too:
// - signals that Node.js ignores (SIGPIPE) back to their default action, and no signal blocked
//   (an ignored disposition and the signal mask survive execve; handlers do not);
// - stdin, stdout and stderr open across the exec (Node.js marks them close-on-exec) and in
//   blocking mode (libuv may have set O_NONBLOCK on them, and the flag belongs to the open
//   file, which the command shares).
// Every other descriptor Node.js opened is close-on-exec: the command inherits what a child
// started by libuv would. If execve fails, all of the above is
// put back as it was, and the process carries on (coffer then starts the command as a child).
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#define THROW(msg)                              \
  do {                                          \
    napi_throw_type_error(env, NULL, msg);      \
    return NULL;                                \
  } while (0)

static void free_list(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

// A JS string as a NUL-terminated C string (malloc'd), or NULL if it is not a string or holds a NUL.
static char *c_string(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, value, s, len + 1, &len) != napi_ok || strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

// A JS array of strings as a NULL-terminated array of C strings, or NULL.
static char **c_list(napi_env env, napi_value array) {
  bool is_array;
  uint32_t n;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) return NULL;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **list = calloc((size_t)n + 1, sizeof(char *));
  if (!list) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !(list[i] = c_string(env, item))) {
      free_list(list);
      return NULL;
    }
  }
  return list;
}

static napi_value Execve(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 3)
    THROW("execve(file, argv, envp) takes three arguments");
  char *file = c_string(env, args[0]);
  char **argv = c_list(env, args[1]);
  char **envp = c_list(env, args[2]);
  if (!file || !argv || !argv[0] || !envp) {
    free(file);
    free_list(argv);
    free_list(envp);
    THROW("execve: file must be a string, argv a non-empty array of strings, envp an array of strings (none holding NUL)");
  }

  struct sigaction dfl, ignored[NSIG];
  bool reset[NSIG] = {false};
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; s++) {
    struct sigaction now;
    if (sigaction(s, NULL, &now) == 0 && now.sa_handler == SIG_IGN) {
      ignored[s] = now;
      reset[s] = sigaction(s, &dfl, NULL) == 0;
    }
  }
  sigset_t none, mask;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, &mask);
  int flags[3], fdflags[3];
  for (int fd = 0; fd < 3; fd++) {
    flags[fd] = fcntl(fd, F_GETFL);
    if (flags[fd] != -1 && (flags[fd] & O_NONBLOCK)) fcntl(fd, F_SETFL, flags[fd] & ~O_NONBLOCK);
    fdflags[fd] = fcntl(fd, F_GETFD);
    if (fdflags[fd] != -1 && (fdflags[fd] & FD_CLOEXEC)) fcntl(fd, F_SETFD, fdflags[fd] & ~FD_CLOEXEC);
  }

  execve(file, argv, envp);
  int err = errno;

  for (int fd = 0; fd < 3; fd++) {
    if (flags[fd] != -1 && (flags[fd] & O_NONBLOCK)) fcntl(fd, F_SETFL, flags[fd]);
    if (fdflags[fd] != -1 && (fdflags[fd] & FD_CLOEXEC)) fcntl(fd, F_SETFD, fdflags[fd]);
  }
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  for (int s = 1; s < NSIG; s++)
    if (reset[s]) sigaction(s, &ignored[s], NULL);
  free(file);
  free_list(argv);
  free_list(envp);
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "execve", NAPI_AUTO_LENGTH, Execve, NULL, &fn);
  napi_set_named_property(env, exports, "execve", fn);
  return exports;
}
