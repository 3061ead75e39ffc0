/* repl.c — the interactive prompt: the loop keeps running while it waits for input
   (readline's callback interface fed by a uv_poll on stdin), top-level await, locals
   that persist, history and tab completion of globals and fields. Without a terminal
   it reads lines as the stock lua command does with readline: each prompt, then the
   line read, are written out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>

#include "alua.h"
#include "core/core.h"
#include "core/stdlib_files.h"
#include "os/os.h"
#include "vm.h"

#define PROMPT "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 1000

typedef struct repl {
  lua_State *L;
  int tty; /* stdin is a terminal: readline, history, completion */
  uv_poll_t stdin_poll;
  char *line;      /* a line readline completed, owned by us until evaluated */
  int line_ready;  /* readline called back: a line (or EOF, line == NULL) */
  int editing;     /* a prompt is on screen: output must redraw around it */
  int interrupted; /* Ctrl-C at the prompt: the line (and chunk) is dropped */
  char history_path[1024];
} repl;

static repl *the_repl; /* readline's callbacks carry no user data */

/* ---- input through the loop ------------------------------------------------------- */

static void repl_on_line(char *line) {
  the_repl->line = line;
  the_repl->line_ready = 1;
  rl_callback_handler_remove(); /* no prompt until we ask for the next line */
  the_repl->editing = 0;
}

/* Ctrl-C while the prompt waits: drop what was typed, show a fresh prompt. */
static void repl_on_interrupt(void) {
  repl *r = the_repl;
  rl_callback_sigcleanup();
  rl_replace_line("", 0);
  rl_callback_handler_remove();
  fputs("^C\n", stdout);
  fflush(stdout);
  r->editing = 0;
  r->interrupted = 1;
  r->line = NULL;
  r->line_ready = 1;
}

static void repl_on_stdin(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {
    repl_on_line(NULL);
    return;
  }
  rl_callback_read_char();
}

/* Runs the loop, tasks included, until readline has a complete line. NULL: end of input. */
static char *repl_read(repl *r, const char *prompt) {
  r->line = NULL;
  r->line_ready = 0;
  r->interrupted = 0;
  rl_callback_handler_install(prompt, repl_on_line);
  r->editing = 1;
  uv_poll_start(&r->stdin_poll, UV_READABLE, repl_on_stdin);
  signal_interrupt_at_prompt(repl_on_interrupt);
  while (!r->line_ready) alua_run(r->L, UV_RUN_ONCE);
  signal_interrupt_at_prompt(NULL);
  uv_poll_stop(&r->stdin_poll);
  return r->line;
}

/* Without a terminal: the prompt, then the line read (any length, without its newline)
   echoed after it, as readline writes them; NULL at the end of input. */
static char *repl_read_plain(const char *prompt) {
  char *line = NULL;
  size_t cap = 0;
  fputs(prompt, stdout);
  fflush(stdout);
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  return line;
}

/* The prompt is _PROMPT (_PROMPT2 on continuation lines) through tostring, each time it
   is shown, or the default, as in lua.c. Reads a line after it. */
static char *repl_read_line(repl *r, int firstline) {
  lua_State *L = r->L;
  const char *prompt = firstline ? PROMPT : PROMPT2;
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") != LUA_TNIL) {
    prompt = luaL_tolstring(L, -1, NULL); /* kept on the stack while it is shown */
    lua_remove(L, -2);
  }
  char *line = r->tty ? repl_read(r, prompt) : repl_read_plain(prompt); /* readline copies it */
  lua_pop(L, 1);
  return line;
}

/* print and io.write while a prompt is on screen: clear the line being edited, write,
   draw the prompt and the user's text again below. */
static int repl_redraw_around(lua_State *L) {
  int editing = the_repl && the_repl->editing;
  if (editing) rl_clear_visible_line();
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (editing) {
    fflush(stdout);
    rl_forced_update_display();
  }
  return lua_gettop(L);
}

static void repl_wrap_output(lua_State *L) {
  lua_getglobal(L, "print");
  lua_pushcclosure(L, repl_redraw_around, 1);
  lua_setglobal(L, "print");
  lua_getglobal(L, "io");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "write");
    lua_pushcclosure(L, repl_redraw_around, 1);
    lua_setfield(L, -2, "write");
  }
  lua_pop(L, 1);
}

/* ---- completion ------------------------------------------------------------------- */

static char **completion_list;
static size_t completion_count, completion_next;

static void completion_add(const char *prefix_path, size_t path_len, const char *key) {
  char *s = malloc(path_len + strlen(key) + 1);
  if (s == NULL) return;
  memcpy(s, prefix_path, path_len);
  strcpy(s + path_len, key);
  char **list = realloc(completion_list, (completion_count + 1) * sizeof *list);
  if (list == NULL) {
    free(s);
    return;
  }
  completion_list = list;
  completion_list[completion_count++] = s;
}

/* Adds the string keys of the table on top (and of its __index tables) that start with
   `word`; pops the table. */
static void completion_collect(lua_State *L, const char *path, size_t path_len, const char *word) {
  size_t wlen = strlen(word);
  for (int depth = 0; depth < 4 && lua_istable(L, -1); depth++) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING) {
        const char *k = lua_tostring(L, -1);
        if (strncmp(k, word, wlen) == 0) completion_add(path, path_len, k);
      }
    }
    if (!lua_getmetatable(L, -1)) break;
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
}

/* Completes `a.b.c` / `obj:meth` from the globals and the tables they lead to. */
static void completion_build(lua_State *L, const char *text) {
  completion_count = completion_next = 0;
  completion_list = NULL;
  int top = lua_gettop(L);
  lua_pushglobaltable(L);
  const char *seg = text;
  for (const char *p = text; *p; p++) {
    if (*p != '.' && *p != ':') continue;
    lua_pushlstring(L, seg, (size_t)(p - seg));
    if (!lua_istable(L, -2) && !lua_isuserdata(L, -2)) {
      lua_settop(L, top);
      return;
    }
    lua_gettable(L, -2); /* may run __index; it is the user's own code */
    lua_remove(L, -2);
    if (lua_isuserdata(L, -1) && lua_getmetatable(L, -1)) {
      lua_getfield(L, -1, "__index");
      lua_replace(L, -3);
      lua_pop(L, 1);
    }
    seg = p + 1;
  }
  completion_collect(L, text, (size_t)(seg - text), seg);
  lua_settop(L, top);
}

static char *completion_generator(const char *text, int state) {
  (void)text;
  (void)state; /* the list is built before readline asks for the first match */
  if (completion_next < completion_count) return completion_list[completion_next++];
  free(completion_list); /* readline owns and frees the strings we returned */
  completion_list = NULL;
  return NULL;
}

static char **repl_complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file name completion */
  completion_build(the_repl->L, text);
  return rl_completion_matches(text, completion_generator);
}

/* ---- evaluation ------------------------------------------------------------------- */

/* `local x = 1` at the prompt: the variable must outlive the line it was typed on, as
   in Python's REPL, so a leading `local` (without attributes) becomes a global
   assignment; `local function f` becomes `function f`. */
static const char *repl_unlocal(const char *src) {
  const char *p = src;
  while (*p == ' ' || *p == '\t') p++;
  if (strncmp(p, "local", 5) != 0 || (p[5] != ' ' && p[5] != '\t')) return src;
  const char *rest = p + 6;
  while (*rest == ' ' || *rest == '\t') rest++;
  if (strncmp(rest, "function", 8) == 0) return rest;
  const char *eq = strchr(rest, '=');
  const char *attr = strchr(rest, '<');
  if (attr && (!eq || attr < eq)) return src; /* <const>/<close> keep their meaning */
  if (!eq) return NULL;                       /* `local x`: declare as nil */
  return rest;
}

/* Compiles `return SRC` (an expression) or else SRC itself (statements). */
static int repl_compile(lua_State *L, const char *src, size_t len) {
  lua_pushfstring(L, "return %s;", src);
  int status = vm_loadstring(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
  lua_remove(L, -2);
  if (status == LUA_OK) return LUA_OK;
  lua_pop(L, 1);
  const char *plain = repl_unlocal(src);
  if (plain == NULL) { /* `local x` alone */
    lua_pushliteral(L, "");
    plain = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (plain != src) {
    status = vm_loadstring(L, plain, strlen(plain), "=stdin");
    if (status == LUA_OK) return LUA_OK;
    lua_pop(L, 1);
  }
  return vm_loadstring(L, src, len, "=stdin");
}

/* Is the syntax error on top "the chunk ended too early"? */
static int repl_incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

#define REPL_SHOW_KEY "alua.repl_show"

/* Keeps stdlib/alua/repl_show.lua's function (a value -> what to print) in the registry. */
static void repl_show_load(lua_State *L) {
  for (const stdlib_file *f = stdlib_files; f->name; f++) {
    if (strcmp(f->name, "alua.repl_show") != 0) continue;
    if (luaL_loadbufferx(L, f->data, f->len, f->chunkname, "t") == LUA_OK &&
        vm_pcall(L, 0, 1) == LUA_OK) {
      lua_setfield(L, LUA_REGISTRYINDEX, REPL_SHOW_KEY);
    } else {
      lua_pop(L, 1); /* without it, results print as print shows them */
    }
    return;
  }
}

/* Prints what a line returned: tables with their contents (repl_show), through the
   global print (which the user may have replaced). */
static void repl_print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n == 0) return;
  if (lua_getfield(L, LUA_REGISTRYINDEX, REPL_SHOW_KEY) == LUA_TFUNCTION) {
    lua_insert(L, base + 1);
    if (vm_pcall(L, n, LUA_MULTRET) != LUA_OK) {
      fprintf(stderr, "error showing the results (%s)\n", lua_tostring(L, -1));
      lua_settop(L, base);
      return;
    }
    n = lua_gettop(L) - base;
  } else {
    lua_pop(L, 1);
  }
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (vm_pcall(L, n, 0) != LUA_OK) {
    fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

static void repl_history_add(repl *r, const char *line) {
  if (!r->tty || *line == '\0') return;
  add_history(line);
  if (*r->history_path) append_history(1, r->history_path);
}

/* Reads one chunk (continuing on ">>" lines while incomplete), runs it, prints what it
   returned or its error. Returns 0 at end of input. */
static int repl_step(repl *r) {
  lua_State *L = r->L;
  int base = lua_gettop(L);
  char *line = repl_read_line(r, 1);
  if (line == NULL) return r->interrupted;
  repl_history_add(r, line);
  if (line[0] == '=') /* `=expr` prints expr, as in Lua 5.2 and lua.c */
    lua_pushfstring(L, "return %s", line + 1);
  else
    lua_pushstring(L, line); /* the chunk's text so far, at base + 1 */
  free(line);
  int status;
  for (;;) {
    size_t len;
    const char *src = lua_tolstring(L, base + 1, &len);
    status = repl_compile(L, src, len);
    if (!repl_incomplete(L, status)) break;
    line = repl_read_line(r, 0);
    if (line == NULL) {
      if (!r->interrupted) break;
      lua_settop(L, base); /* Ctrl-C on a continuation line drops the whole chunk */
      return 1;
    }
    repl_history_add(r, line);
    lua_pop(L, 1);
    lua_pushliteral(L, "\n");
    lua_pushstring(L, line);
    free(line);
    lua_concat(L, 3);
  }
  lua_remove(L, base + 1);
  if (status == LUA_OK) status = vm_pcall(L, 0, LUA_MULTRET);
  if (status == LUA_OK) {
    repl_print_results(L, base);
  } else if (signal_interrupted()) { /* Ctrl-C cancelled what the line was running */
    fputs("KeyboardInterrupt\n", stderr);
  } else {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  }
  fflush(stderr);
  signal_interrupt_reset();
  lua_settop(L, base);
  return 1;
}

static void repl_history_open(repl *r) {
  const char *path = getenv("ALUA_HISTORY");
  const char *home = getenv("HOME");
  if (path && *path)
    snprintf(r->history_path, sizeof r->history_path, "%s", path);
  else if (home)
    snprintf(r->history_path, sizeof r->history_path, "%s/.alua_history", home);
  else
    r->history_path[0] = '\0';
  using_history();
  if (*r->history_path) {
    read_history(r->history_path);
    FILE *f = fopen(r->history_path, "a"); /* append_history needs the file to exist */
    if (f) fclose(f);
  }
}

static void repl_history_close(repl *r) {
  if (*r->history_path) history_truncate_file(r->history_path, HISTORY_MAX);
}

/* Without a terminal (or if stdin cannot be polled): plain lines, no history. */
static int repl_plain(lua_State *L) {
  repl r;
  memset(&r, 0, sizeof r);
  r.L = L;
  while (repl_step(&r)) {
  }
  fputs("\n", stdout);
  return LUA_OK;
}

int vm_repl(lua_State *L) {
  repl_show_load(L);
  if (!isatty(0)) return repl_plain(L);
  repl r;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.tty = 1;
  the_repl = &r;
  if (uv_poll_init(alua_loop(L), &r.stdin_poll, 0) != 0) {
    the_repl = NULL;
    return repl_plain(L);
  }
  rl_readline_name = "alua";
  rl_attempted_completion_function = repl_complete;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,[+-*/%^~#";
  repl_history_open(&r);
  repl_wrap_output(L);
  while (repl_step(&r)) {
  }
  repl_history_close(&r);
  fputs("\n", stdout);
  uv_close((uv_handle_t *)&r.stdin_poll, NULL);
  alua_run(L, UV_RUN_NOWAIT); /* lets the poll handle finish closing */
  the_repl = NULL;
  return LUA_OK;
}
