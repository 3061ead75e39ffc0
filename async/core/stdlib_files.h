/* stdlib_files.h — the Lua standard library compiled into the binary (generated table). */
#ifndef ALUA_STDLIB_FILES_H
#define ALUA_STDLIB_FILES_H

#include <stddef.h>

typedef struct stdlib_file {
  const char *name;      /* module name: "asyncio", "asyncio.tasks" */
  const char *chunkname; /* "@stdlib/asyncio/tasks.lua": tracebacks name the source file */
  const char *data;
  size_t len;
} stdlib_file;

extern const stdlib_file stdlib_files[]; /* ends with a NULL name */

#endif
