/* lcorolib.c — coroutine.resume/wrap/yield that let await pass through user coroutines. */
#include "core.h"

/* A coroutine a task resumes runs on behalf of that task: when code inside it awaits,
   the await's yield carries await_tag; we yield it on up to the scheduler and, when
   the task is resumed, resume the inner coroutine where it stopped. */

/* A coroutine suspended in an await it passed through belongs to the scheduler until
   its task resumes it: marked in its owner slot (see task_of). */
static void co_mark_awaiting(lua_State *co) { owner_set_flags(co, OWNER_AWAITING); }
static int co_is_awaiting(lua_State *co) { return owner_flags(co) & OWNER_AWAITING; }

/* Why co cannot be resumed, or NULL: the messages of the stock lua_resume. */
static const char *co_not_resumable(lua_State *L, lua_State *co) {
  lua_Debug ar;
  if (co == L) return "cannot resume non-suspended coroutine";
  switch (lua_status(co)) {
    case LUA_YIELD:
      if (co_is_awaiting(co))
        return "cannot resume a coroutine suspended in an await: its task resumes it";
      return NULL;
    case LUA_OK:
      if (lua_getstack(co, 0, &ar)) return "cannot resume non-suspended coroutine";
      if (lua_gettop(co) == 0) return "cannot resume dead coroutine";
      return NULL;
    default: return "cannot resume dead coroutine";
  }
}

/* co runs for L's task, as resumed by L: its owner slot names that task (nor can it
   suspend where L cannot). */
static void co_run_for(lua_State *co, lua_State *L) {
  task_set_thread_owner(co, task_of(L));
  owner_set_flags(co, owner_flags(L) & OWNER_NO_SUSPEND);
}

/* Resumes co with narg values already on its stack, passing awaits through. Leaves the
   results (or the error) on co's stack; returns the status and sets *nres. Once co
   yields, returns or fails it is nobody's again (but suspended in an await it passed
   up, which its task resumes): whoever resumes it next says for whom, and a C library's
   own lua_resume says nothing, so a slot left naming this task would make that code run
   for a task that is not running, or is finished and freed (current_task() of the wrong
   task, or nil; an await suspending that task, tests/c/c_resume_test.c). */
static int co_resume_passing(lua_State *L, lua_State *co, int narg, int *nres, lua_KContext ctx,
                             lua_KFunction k) {
  task *t = task_of(L);
  co_run_for(co, L);
  lua_State *published = t ? loop_enter(t->base.loop, co) : NULL;
  int status = await_resume(t ? t->base.loop : NULL, co, L, narg, nres);
  if (t) loop_leave(t->base.loop, published);
  if (status != LUA_YIELD || *nres != 1 || lua_touserdata(co, -1) != &await_tag)
    task_set_thread_owner(co, NULL);
  else {
    lua_pop(co, 1);
    co_mark_awaiting(co);
    if (!lua_isyieldable(L)) {
      if (t && t->awaiting) {
        future_remove_waiter(t->awaiting, &t->wait);
        t->awaiting = NULL;
      }
      luaL_error(L,
                 "await: cannot suspend here: this coroutine was resumed from a C function "
                 "that cannot yield (table.sort, string.gsub, require, __tostring...)");
    }
    lua_pushlightuserdata(L, &await_tag);
    lua_yieldk(L, 1, ctx, k);
  }
  return status;
}

/* ---- coroutine.resume --------------------------------------------------------------- */

static int resume_results(lua_State *L, lua_State *co, int status, int nres) {
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

static int resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_check_resumer(L);
  lua_settop(L, 1); /* the task was resumed with nothing to pass: await reads its future */
  lua_State *co = lua_tothread(L, 1);
  int nres = 0;
  status = co_resume_passing(L, co, 0, &nres, 0, resume_k);
  return resume_results(L, co, status, nres);
}

static int co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  if (co != L && (owner_flags(co) & OWNER_TASK_THREAD))
    return luaL_error(L,
                      "coroutine.resume: cannot resume a task's own thread: the event loop "
                      "resumes it (await the task instead)");
  int narg = lua_gettop(L) - 1;
  const char *why = co_not_resumable(L, co);
  if (why) { /* like the stock coroutine.resume: a result, not an error */
    lua_pushboolean(L, 0);
    lua_pushstring(L, why);
    return 2;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, narg);
  int nres = 0;
  int status = co_resume_passing(L, co, narg, &nres, 0, resume_k);
  return resume_results(L, co, status, nres);
}

/* ---- coroutine.wrap ----------------------------------------------------------------- */

static int wrap_results(lua_State *L, lua_State *co, int status, int nres) {
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  /* an error killed the coroutine: close its to-be-closed variables, then propagate
     the error the closing ended with (a handler's error replaces the body's) with the
     caller's position, as the stock coroutine.wrap does. The failed resume left the
     error on co's stack twice: one copy is ours, the other is what the handlers see. */
  lua_xmove(co, L, 1);
  co_run_for(co, L); /* its handlers run for the caller's task, as the body did */
#if LUA_VERSION_RELEASE_NUM >= 50406
  status = lua_closethread(co, L);
#else
  status = lua_resetthread(co);
#endif
  task_set_thread_owner(co, NULL);
  lua_xmove(co, L, 1); /* the closed thread keeps only its final error: it is now dead */
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int wrap_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  await_check_resumer(L);
  lua_settop(L, (int)ctx);
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int nres = 0;
  status = co_resume_passing(L, co, 0, &nres, ctx, wrap_k);
  return wrap_results(L, co, status, nres);
}

static int wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L);
  const char *why = co_not_resumable(L, co);
  if (why) return luaL_error(L, "%s", why);
  if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int nres = 0;
  int status = co_resume_passing(L, co, narg, &nres, 0, wrap_k);
  return wrap_results(L, co, status, nres);
}

static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrap_call, 1);
  return 1;
}

/* ---- coroutine.close ---------------------------------------------------------------- */

/* The stock coroutine.close (upvalue 1), except on a thread the loop resumes: a task's own
   (suspended in an await, it would be killed under the scheduler) or a coroutine
   suspended in an await it passed up to its task. */
static int co_close(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  if (co != NULL && co != L) {
    if (owner_flags(co) & OWNER_TASK_THREAD)
      return luaL_error(L,
                        "coroutine.close: cannot close a task's own thread (cancel the "
                        "task instead)");
    if (owner_flags(co) & OWNER_AWAITING)
      return luaL_error(L,
                        "coroutine.close: cannot close a coroutine suspended in an await: "
                        "its task resumes it (cancel the task instead)");
    /* its <close> handlers run on co, for the caller's task as if resumed by it */
    co_run_for(co, L);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (co != NULL && co != L) task_set_thread_owner(co, NULL); /* dead now: nobody's */
  return lua_gettop(L);
}

/* ---- coroutine.yield ---------------------------------------------------------------- */

static int co_yield (lua_State *L) {
  task *t = task_of(L);
  if (t && t->co == L)
    return luaL_error(L,
                      "coroutine.yield: cannot yield from a task's own body; use await "
                      "(coroutine.yield works inside coroutines the task creates)");
  if (owner_flags(L) & OWNER_NO_SUSPEND) /* await.c's thread for a callback that cannot */
    return luaL_error(L, "attempt to yield across a C-call boundary");
  return lua_yield(L, lua_gettop(L));
}

/* Replaces resume, wrap, yield and close in the global coroutine table. */
void lcorolib_patch(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  task_set_thread_owner(lua_tothread(L, -1), NULL); /* new threads copy the main one's slot */
  lua_pop(L, 1);
  lua_getglobal(L, "coroutine");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushcfunction(L, co_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, co_wrap);
  lua_setfield(L, -2, "wrap");
  lua_pushcfunction(L, co_yield );
  lua_setfield(L, -2, "yield");
  lua_getfield(L, -1, "close");
  lua_pushcclosure(L, co_close, 1);
  lua_setfield(L, -2, "close");
  lua_pop(L, 1);
}
