/* op.c — awaitable operations: what a stream's read, readline, readuntil, readexactly
   and drain return. Awaiting one tries the operation at once, in C; only when it cannot
   complete yet does the task wait on a future the operation arms (the stream's next
   read event, its drain), then try again. A coroutine object would cost an allocation
   with a finalizer, a Lua frame and two extra awaits per call: on a busy connection
   these calls are most of the work per request. */
#include "core.h"

/* User values 1..nargs: the arguments `attempt` and `arm` receive. */
typedef struct op {
  const op_spec *spec;
  int nargs;
  uint8_t taken; /* awaited or wrapped in a task: an operation runs once */
} op;

/* Pops nargs arguments and pushes an operation of `spec` on them. */
void op_push(lua_State *L, const op_spec *spec, int nargs) {
  op *o = lua_newuserdatauv(L, sizeof *o, nargs);
  o->spec = spec;
  o->nargs = nargs;
  o->taken = 0;
  type_setmetatable(L, &type_op);
  lua_insert(L, -(nargs + 1));
  int idx = lua_gettop(L) - nargs;
  for (int i = nargs; i >= 1; i--) lua_setiuservalue(L, idx, i);
}

int op_test(lua_State *L, int idx) { return type_test(L, idx, &type_op) != NULL; }

/* Marks the operation at idx as run; a second await (or task) of it is an error. */
void op_claim(lua_State *L, int idx, const char *fname) {
  op *o = lua_touserdata(L, idx);
  if (o->taken)
    luaL_error(L,
               "%s: this %s was already awaited (an operation runs once; wrap it in "
               "asyncio.create_task to share its result)",
               fname, o->spec->name);
  o->taken = 1;
}

static int op_resume_k(lua_State *L, int status, lua_KContext ctx);

/* Tries the operation at index 1 until it completes (returns its results) or must wait
   (suspends task t on the armed future, kept at index 2 for op_resume_k). */
static int op_attempt(lua_State *L, task *t) {
  const op *o = lua_touserdata(L, 1);
  for (;;) {
    lua_settop(L, 1);
    for (int i = 1; i <= o->nargs; i++) lua_getiuservalue(L, 1, i);
    int n = o->spec->attempt(L, 2);
    if (n >= 0) return n;
    lua_settop(L, 1 + o->nargs);
    o->spec->arm(L, 2);
    future *f = lua_touserdata(L, -1);
    if (f->state != FUT_PENDING) { /* completed while armed (TLS had data decrypted) */
      future_push_outcome(L, f, lua_gettop(L));
      continue;
    }
    lua_replace(L, 2);
    lua_settop(L, 2);
    return await_suspend(L, t, f, op_resume_k);
  }
}

static int op_resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  task *t = task_of(L);
  await_deliver_cancel(L, t);
  future_push_outcome(L, lua_touserdata(L, 2), 2); /* raises if it was cancelled */
  return op_attempt(L, t);
}

/* await of the operation at index 1, inside task t. */
int op_await(lua_State *L, task *t) {
  op_claim(L, 1, "await");
  return op_attempt(L, t);
}

static int op_tostring(lua_State *L) {
  const op *o = type_check(L, 1, &type_op, "operation");
  lua_pushfstring(L, "<%s operation%s>", o->spec->name, o->taken ? " (taken)" : "");
  return 1;
}

void op_open(lua_State *L) {
  lua_createtable(L, 0, 2);
  type_register(L, -1, &type_op);
  lua_pushcfunction(L, op_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "asyncio.operation");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
