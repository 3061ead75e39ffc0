/* vm.h — what the interpreter's parts share (not part of the embedding API). */
#ifndef ALUA_VM_H
#define ALUA_VM_H

#include <lua.h>

/* Loads a script file (NULL: stdin) / a string chunk, keyword syntax applied. */
int vm_loadfile(lua_State *L, const char *path);
int vm_loadstring(lua_State *L, const char *src, size_t len, const char *chunkname);

/* Calls the function under it with nargs arguments; an error leaves alua_msgh's text. */
int vm_pcall(lua_State *L, int nargs, int nresults);

/* After the main chunk: runs the loop until nothing is left, then cancels leftovers. */
int vm_run_loop_to_end(lua_State *L);

/* After the REPL: cancels the tasks still pending and waits for them to finish. */
int vm_cancel_leftovers(lua_State *L);

/* The alua command's allocator: malloc over a heap populated as it grows (heap.c). */
void vm_heap_install(lua_State *L);

/* Replaces table.unpack by one that leaves room for the call its values go to (unpack.c). */
void unpack_install(lua_State *L);

/* The interactive prompt. */
int vm_repl(lua_State *L);

#endif
