/* syntax.h — the keyword transform (async function, await EXPR) as a pure C pass over Lua source. */
#ifndef ALUA_SYNTAX_H
#define ALUA_SYNTAX_H

#include <stddef.h>

enum { SYNTAX_OK, SYNTAX_ERROR, SYNTAX_NOMEM };

struct syntax_output {
  const char *text; /* the translation; the input itself when nothing changed */
  size_t len;
  char *buffer; /* malloc'd storage behind text, or NULL */
  /* SYNTAX_ERROR only: "chunk:LINE: MSG near NEAR" in Lua's words */
  int line;
  char msg[96];
  const char *near; /* the offending token inside the input; NULL: end of input */
  size_t near_len;
};

/* Translate src. SYNTAX_OK fills text/len (line numbers of every token kept), SYNTAX_ERROR
   the error fields, SYNTAX_NOMEM nothing. Call syntax_output_free in every case. Binary
   chunks and text that Lua itself will reject lexically come back unchanged past that point. */
int syntax_translate(const char *src, size_t len, struct syntax_output *out);
void syntax_output_free(struct syntax_output *out);

#endif
