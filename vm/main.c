/* main.c — the alua command: the stock lua command's flags, then the loop until idle. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "alua.h"
#include "core/core.h"
#include "os/os.h"
#include "loader.h"
#include "vm.h"

static const char *progname = "alua";
static int keyboard_interrupt; /* the run ended because of Ctrl-C: exit 130 */

typedef struct options {
  int interactive, version, noenv, warnings, no_keywords, has_e, translate, help, debug;
  int script;          /* index of the script in argv, or 0 */
  int first_arg_error; /* index of a bad option, or 0 */
} options;

/* The usage text: on stdout for --help, on stderr after a bad option. */
static void usage_print(FILE *out) {
  fprintf(out,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat       execute string 'stat'\n"
          "  -i            enter interactive mode after executing 'script'\n"
          "  -l mod        require library 'mod' into global 'mod'\n"
          "  -l g=mod      require library 'mod' into global 'g'\n"
          "  -v            show version information\n"
          "  -E            ignore environment variables\n"
          "  -W            turn warnings on\n"
          "  --help, -h    show this help and exit (-h: on stderr with status 1, as\n"
          "                lua answers it; Lua's own test suite checks that)\n"
          "  --no-keywords do not translate async/await keyword syntax\n"
          "  --translate   print the plain-Lua translation of 'script' (or stdin)\n"
          "  --debug       debug mode: slow steps, where objects were made, unclosed\n"
          "                resources; SIGQUIT (Ctrl-\\) prints every task\n"
          "  --            stop handling options\n"
          "  -             stop handling options and execute stdin\n",
          progname);
}

static void usage(const char *badoption) {
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
  else if (strcmp(badoption, "-h") == 0) /* lua's words, which its test suite requires */
    fprintf(stderr, "%s: unrecognized option '-h' (as for lua; --help: on stdout, status 0)\n",
            progname);
  else
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  usage_print(stderr);
}

/* First pass over argv: flags that matter before the state exists. Returns the index
   of the first argument that is not an option (the script), or -1 on a bad option. */
static int options_parse(int argc, char **argv, options *o) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') return i;
    if (strcmp(a, "--") == 0) return i + 1;
    if (strcmp(a, "-") == 0) return i;
    if (strcmp(a, "--no-keywords") == 0) {
      o->no_keywords = 1;
    } else if (strcmp(a, "--translate") == 0) {
      o->translate = 1;
    } else if (strcmp(a, "--debug") == 0) {
      o->debug = 1;
    } else if (strcmp(a, "-E") == 0) {
      o->noenv = 1;
    } else if (strcmp(a, "-W") == 0) {
      o->warnings = 1;
    } else if (strcmp(a, "-i") == 0) {
      o->interactive = o->version = 1;
    } else if (strcmp(a, "-v") == 0) {
      o->version = 1;
    } else if (strcmp(a, "--help") == 0) { /* -h stays lua's unrecognized option: usage() */
      o->help = 1;
      return i;
    } else if (a[1] == 'e' || a[1] == 'l') {
      if (a[1] == 'e') o->has_e = 1;
      if (a[2] == '\0') {
        if (++i >= argc || argv[i][0] == '-') {
          o->first_arg_error = i - (i >= argc ? 1 : 0);
          usage(a);
          return -1;
        }
      }
    } else {
      usage(a);
      return -1;
    }
  }
  return i;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (signal_interrupted() && msg && strncmp(msg, "CancelledError", 14) == 0) {
      lua_pop(L, 1); /* Ctrl-C's cancellation: main() says KeyboardInterrupt */
      keyboard_interrupt = 1;
      return status;
    }
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

static int run_chunk(lua_State *L, int status) {
  if (status == LUA_OK) status = vm_pcall(L, 0, 0);
  return report(L, status);
}

static int run_string(lua_State *L, const char *src, const char *name) {
  return run_chunk(L, vm_loadstring(L, src, strlen(src), name));
}

/* -l mod, or -l g=mod: g = require(mod) */
static int run_require(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *modname = eq ? eq + 1 : spec;
  lua_pushlstring(L, spec, eq ? (size_t)(eq - spec) : strlen(spec)); /* the global's name */
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = vm_pcall(L, 1, 1);
  if (status == LUA_OK) {
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  } else {
    lua_remove(L, -2);
  }
  return report(L, status);
}

/* The `arg` table: arg[0] is the script (the interpreter when there is none), negative
   indices the interpreter and options, positive ones the script's arguments. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
  int base = script > 0 ? script : 0;
  lua_createtable(L, argc - base, base + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static int run_init(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv("LUA_INIT_5_4");
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv("LUA_INIT");
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return run_chunk(L, vm_loadfile(L, init + 1));
  return run_string(L, init, name);
}

/* -e, -l and -W, in the order given. */
static int run_options(lua_State *L, char **argv, int script) {
  for (int i = 1; i < script; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l' && a[1] != 'W')) continue;
    if (a[1] == 'W') {
      lua_warning(L, "@on", 0);
      continue;
    }
    if (a[1] != 'e' && a[1] != 'l') continue;
    const char *value = a[2] ? a + 2 : argv[++i];
    int status = a[1] == 'e' ? run_string(L, value, "=(command line)") : run_require(L, value);
    if (status != LUA_OK) return status;
  }
  return LUA_OK;
}

/* Pushes arg[1..#arg]: the script's arguments are what the `arg` table holds when it
   starts (an -e may have changed it), as lua.c does. */
static int push_script_args(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

static int run_script(lua_State *L, char **argv, int script) {
  const char *fname = argv[script];
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0) fname = NULL;
  int status = vm_loadfile(L, fname);
  if (status == LUA_OK) status = vm_pcall(L, push_script_args(L), 0);
  return report(L, status);
}

/* --translate: the script's translation on stdout, for luacheck, LuaLS and formatters. */
static int translate_script(lua_State *L, char **argv, int script) {
  const char *fname = script && strcmp(argv[script], "-") != 0 ? argv[script] : NULL;
  int status = loader_translatefile(L, fname);
  size_t len;
  /* text Lua rejects is still printed (an editor's half-typed line); the error is the
     exit status */
  const char *text = lua_tolstring(L, -2, &len);
  if (text && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)) {
    lua_pushfstring(L, "cannot write the translation: %s", strerror(errno));
    lua_replace(L, -2);
    status = LUA_ERRFILE;
  }
  report(L, status);
  lua_pop(L, status == LUA_OK ? 2 : 1);
  return status;
}

/* alua's line, then Lua's own (what `lua -v` prints) */
static void print_version(void) {
  printf("%s (%s, libuv %s)\n%s\n", ALUA_VERSION, LUA_RELEASE, uv_version_string(), LUA_COPYRIGHT);
  fflush(stdout);
}

/* Everything that runs Lua, under one protected call so that memory errors are reported. */
typedef struct main_args {
  int argc;
  char **argv;
  options opts;
  int status;
} main_args;

static int protected_main(lua_State *L) {
  main_args *m = lua_touserdata(L, 1);
  int argc = m->argc, script = m->opts.script;
  char **argv = m->argv;
  luaL_checkversion(L);
  if (m->opts.translate) {
    if (translate_script(L, argv, script) == LUA_OK) m->status = EXIT_SUCCESS;
    return 0;
  }
  if (m->opts.noenv) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  alua_openlibs(L);
  if (m->opts.no_keywords) loader_set_keywords(L, 0);
  if (m->opts.debug) debug_enable(L);
  create_arg_table(L, argc, argv, script);
  signal_catch_interrupt(L);
  /* Generational, as lua.c. After a major collection that freed little (the live set
     grows: thousands of tasks made at once) Lua waits for the heap to grow by the
     pause before the next one; 300% instead of the default 200% halves the collector's
     passes over a growing heap (spawn: its instructions -31%, CPU per task -10%; timers:
     -62%) for a peak up to 1.5x higher while the live set grows (bench/RESULTS.md, issue
     22 session 5). A program in a steady state collects as before: minor collections.
     A minor collection every 80% of growth instead of 20%, and a major one at 300% over
     the last one's heap instead of 100%: each minor collection walks every live thread,
     and the young step must stay well under the major threshold ((1+3)/(1+0.8) = 2.2,
     1.7 with Lua's 20/100), or a large string's overshoot makes every step a major one
     (50/100: D 64 KiB's collector x5.7 with few connections). Against 20/100: D 64 KiB
     -31% instructions per request, H -8%, spawn and timers equal or fewer, bytes per
     sleeper unchanged; a program whose objects turn old and then die peaks 6-9% higher
     (bench/RESULTS.md, issue 22 session 6, wt-gc). */
  lua_gc(L, LUA_GCINC, 300, 0, 0);
  lua_gc(L, LUA_GCGEN, 80, 300);
  if (m->opts.version) print_version();
  if (!m->opts.noenv && run_init(L) != LUA_OK) return 0;
  if (run_options(L, argv, script ? script : argc) != LUA_OK) return 0;
  if (script && run_script(L, argv, script) != LUA_OK) return 0;
  int interactive = m->opts.interactive;
  if (!interactive && !script && !m->opts.has_e && !m->opts.version) {
    if (isatty(0)) {
      print_version();
      interactive = 1;
    } else if (run_chunk(L, vm_loadfile(L, NULL)) != LUA_OK) {
      return 0;
    }
  }
  if (interactive) {
    /* leaving the prompt ends the session: what still runs is cancelled, not awaited */
    if (vm_repl(L) != LUA_OK || report(L, vm_cancel_leftovers(L)) != LUA_OK) return 0;
  } else {
    /* a Ctrl-C the script caught (a pcall around busy code or a top-level await) let it
       go on, as asyncio.run returns when the main task swallowed the cancellation; one
       while the loop runs what is left stops everything */
    int caught_before = signal_interrupted();
    if (report(L, vm_run_loop_to_end(L)) != LUA_OK) return 0;
    if (!caught_before && signal_interrupted()) {
      keyboard_interrupt = 1;
      return 0;
    }
  }
  m->status = EXIT_SUCCESS;
  return 0;
}

int main(int argc, char **argv) {
  main_args m = {argc, argv, {0}, EXIT_FAILURE};
  if (argv[0] && argv[0][0]) progname = argv[0];
  int script = options_parse(argc, argv, &m.opts);
  if (script < 0) return EXIT_FAILURE;
  if (m.opts.help) {
    usage_print(stdout);
    return EXIT_SUCCESS;
  }
  m.opts.script = script < argc ? script : 0;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  vm_heap_install(L);
  lua_pushcfunction(L, protected_main);
  lua_pushlightuserdata(L, &m);
  int status = lua_pcall(L, 1, 0, 0);
  report(L, status);
  if (keyboard_interrupt) {
    /* Ctrl-C: the main task was cancelled; the other tasks are too, as asyncio.run does */
    report(L, vm_cancel_leftovers(L));
    alua_close(L);
    fputs("KeyboardInterrupt\n", stderr);
    return 130;
  }
  alua_close(L);
  return status == LUA_OK ? m.status : EXIT_FAILURE;
}
