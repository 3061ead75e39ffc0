/* tsan.c — under ThreadSanitizer only (make tsan): Lua's errors and yields unwind C frames
   with longjmp, which Debian's liblua5.4 (built with _FORTIFY_SOURCE) calls as
   __longjmp_chk, a name clang 14's TSan does not intercept. TSan then never rewinds its
   shadow call stack to the setjmp (which it does intercept): the entries of every
   instrumented frame a throw or yield unwound stayed, and a deep await chain, whose
   restack yields every 24 KiB of C stack, ran the fixed-size shadow stack past its end
   (SEGV in __tsan_func_entry in about half the runs of core_await_spec's 20,000-level
   chains; silently elsewhere). This __longjmp_chk, which the static link binds liblua's
   calls to, goes through TSan's longjmp interceptor instead (without the fortified check
   that the target frame is an older one). Empty in every other build. */
#undef _FORTIFY_SOURCE /* longjmp below must not become __longjmp_chk itself */
#include <setjmp.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
void __longjmp_chk(struct __jmp_buf_tag env[1], int val);
void __longjmp_chk(struct __jmp_buf_tag env[1], int val) { longjmp(env, val); }
#endif
#endif
