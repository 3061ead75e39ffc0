/* syntax.c — keyword transform: rewrites `async function` and `await EXPR` into plain Lua calls. */

/* One forward pass. Text is copied lazily: the output buffer exists only once something
   is inserted, so a chunk without keywords comes back as the input itself. A skimmer
   looks only at what can open a string or comment and at the words (and, inside an
   await's arguments, the brackets) that matter where it stands; a precise lexer reads
   the `await` operands themselves, token by token. Insertions never contain a line
   break and removed tokens never span one, so every remaining token keeps its line. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syntax.h"

/* The skimmer tests 16 bytes at a time where the compiler has vector types and SSE2
   (part of x86-64); elsewhere one at a time. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define SKIM_VECTORS 1
typedef unsigned char skim_v16 __attribute__((vector_size(16)));
#endif

/* clang-format off */
enum {
  TK_EOF, TK_NAME, TK_NUMBER, TK_STRING, TK_DOTS, TK_DOT, TK_COLON, TK_DBCOLON,
  TK_SEMI, TK_HASH, TK_OP, TK_LPAREN, TK_RPAREN, TK_LBRACKET, TK_RBRACKET,
  TK_LBRACE, TK_RBRACE,
  TK_AND, TK_BREAK, TK_DO, TK_ELSE, TK_ELSEIF, TK_END, TK_FALSE, TK_FOR,
  TK_FUNCTION, TK_GOTO, TK_IF, TK_IN, TK_LOCAL, TK_NIL, TK_NOT, TK_OR,
  TK_REPEAT, TK_RETURN, TK_THEN, TK_TRUE, TK_UNTIL, TK_WHILE,
  TK_ASYNC, TK_AWAIT   /* plain names until their context says otherwise */
};
/* clang-format on */

/* Internal results: ST_BAIL stops the transform and leaves the rest verbatim, for input
   that Lua will reject at that very point with its own message. */
enum { ST_OK, ST_EOF, ST_BAIL, ST_ERROR, ST_NOMEM };

/* Open constructs. Blocks (function, do, if: closed by `end`) are tracked only while
   something transformed is open. */
enum { F_BLOCK, F_REPEAT, F_ASYNC, F_PAREN, F_BRACKET, F_BRACE, F_AWAIT };

/* Where an `await` operand stands. */
enum {
  AW_PRIMARY, /* its first token comes next */
  AW_SUFFIX,  /* may continue with . : [ ( { or a string */
  AW_DOT,     /* a name must follow */
  AW_COLON,   /* a method name must follow */
  AW_ARGS,    /* method arguments must follow */
  AW_INNER    /* a nested construct is the whole operand; closes with it */
};

struct token {
  int kind;
  size_t start, end;
};

/* F_AWAIT: whether the operand is `name.chain(args)`, which becomes await(await, f)(args). */
enum { FAST_NO, FAST_CHAIN, FAST_CALL };

struct frame {
  unsigned char kind, state;
  unsigned char named, method; /* F_ASYNC: statement form; a:m form */
  unsigned char fast;          /* F_AWAIT: FAST_* */
  size_t open_out;             /* F_AWAIT: where "await(" is in the output */
  size_t call_out;             /* FAST_CALL: where the call's "(" is in the output */
  size_t pos;                  /* start of the construct, for error lines */
  size_t name_start, name_end; /* F_ASYNC: the function name in the input */
};

struct xlate {
  const char *src;
  size_t len;
  char *out; /* allocated at the first edit */
  size_t out_len, out_cap;
  size_t copied;   /* input before this offset is in the output */
  size_t prev_end; /* end of the last token seen by the precise lexer */
  size_t ahead_at; /* `ahead` is the token at this offset (else SIZE_MAX) */
  struct token ahead;
  size_t cm_start, cm_end, cm_prev; /* last comment skipped; end of the token before it */
  size_t mask_base;                 /* the skimmer's last block of 16 and its hits */
  uint32_t mask_bits;
  int mask_mode;
  struct frame *stack;
  size_t depth, cap;
  struct frame stack0[16];
  struct syntax_output *res;
  int no_fast; /* the chunk may have its own await: no await(await, f) */
};

static int is_alpha(unsigned char c) { return (unsigned)((c | 32) - 'a') < 26u || c == '_'; }
static int is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }
static int is_ident(unsigned char c) { return is_alpha(c) || is_digit(c); }
static int is_xdigit(unsigned char c) { return is_digit(c) || (unsigned)((c | 32) - 'a') < 6u; }
static int is_space(unsigned char c) { return c == ' ' || (unsigned)(c - '\t') < 5u; }
static int is_newline(unsigned char c) { return c == '\n' || c == '\r'; }

static int is_name(int kind) { return kind == TK_NAME || kind == TK_ASYNC || kind == TK_AWAIT; }

static int word_kind(const char *w, size_t n) {
#define IS(lit, k) \
  if (n == sizeof(lit) - 1 && memcmp(w, lit, n) == 0) return k
  switch (w[0]) {
    case 'a':
      IS("and", TK_AND);
      IS("async", TK_ASYNC);
      IS("await", TK_AWAIT);
      break;
    case 'b': IS("break", TK_BREAK); break;
    case 'd': IS("do", TK_DO); break;
    case 'e':
      IS("end", TK_END);
      IS("else", TK_ELSE);
      IS("elseif", TK_ELSEIF);
      break;
    case 'f':
      IS("function", TK_FUNCTION);
      IS("false", TK_FALSE);
      IS("for", TK_FOR);
      break;
    case 'g': IS("goto", TK_GOTO); break;
    case 'i':
      IS("if", TK_IF);
      IS("in", TK_IN);
      break;
    case 'l': IS("local", TK_LOCAL); break;
    case 'n':
      IS("nil", TK_NIL);
      IS("not", TK_NOT);
      break;
    case 'o': IS("or", TK_OR); break;
    case 'r':
      IS("return", TK_RETURN);
      IS("repeat", TK_REPEAT);
      break;
    case 't':
      IS("then", TK_THEN);
      IS("true", TK_TRUE);
      break;
    case 'u': IS("until", TK_UNTIL); break;
    case 'w': IS("while", TK_WHILE); break;
    default: break;
  }
#undef IS
  return TK_NAME;
}

/* ---- line numbers, computed only for error messages ---- */

/* Past the line break at p; "\r\n" and "\n\r" count as one, as in Lua. */
static size_t newline_skip(const char *s, size_t n, size_t p) {
  size_t q = p + 1;
  if (q < n && is_newline((unsigned char)s[q]) && s[q] != s[p]) q++;
  return q;
}

static int line_at(const char *s, size_t pos) {
  int line = 1;
  size_t p = 0;
  while (p < pos) {
    if (is_newline((unsigned char)s[p])) {
      line++;
      p = newline_skip(s, pos, p);
    } else {
      p++;
    }
  }
  return line;
}

/* ---- lexical pieces, following llex.c ---- */

static size_t line_end(const char *s, size_t n, size_t p) {
  const char *nl = memchr(s + p, '\n', n - p);
  size_t e = nl ? (size_t)(nl - s) : n;
  const char *cr = memchr(s + p, '\r', e - p);
  return cr ? (size_t)(cr - s) : e;
}

/* Level of a long bracket "[==[" opening at p, or SIZE_MAX. */
static size_t long_level(const char *s, size_t n, size_t p) {
  size_t q = p + 1;
  while (q < n && s[q] == '=') q++;
  return (q < n && s[q] == '[') ? q - p - 1 : SIZE_MAX;
}

/* End of a long string/comment whose body starts at p, or SIZE_MAX if unfinished. */
static size_t long_skip(const char *s, size_t n, size_t p, size_t level) {
  while (p < n) {
    const char *b = memchr(s + p, ']', n - p);
    size_t q;
    if (!b) break;
    p = (size_t)(b - s) + 1;
    q = p;
    while (q < n && s[q] == '=') q++;
    if (q - p == level && q < n && s[q] == ']') return q + 1;
  }
  return SIZE_MAX;
}

/* End of the quoted string at p, or SIZE_MAX if unfinished. */
static size_t string_skip(const char *s, size_t n, size_t p) {
  char quote = s[p++];
  while (p < n) {
    char c = s[p];
    if (c == quote) return p + 1;
    if (is_newline((unsigned char)c)) break;
    if (c != '\\') {
      p++;
      continue;
    }
    if (++p >= n) break;
    if (is_newline((unsigned char)s[p])) {
      p = newline_skip(s, n, p);
    } else if (s[p] == 'z') {
      p++;
      while (p < n && is_space((unsigned char)s[p])) p++;
    } else {
      p++;
    }
  }
  return SIZE_MAX;
}

/* End of the numeral whose first digit is at p, with read_numeral's greed. */
static size_t numeral_skip(const char *s, size_t n, size_t p) {
  char expo = 'e';
  if (s[p] == '0' && p + 1 < n && (s[p + 1] | 32) == 'x') {
    expo = 'p';
    p++;
  }
  p++;
  for (;;) {
    if (p < n && (s[p] | 32) == expo) {
      p++;
      if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    } else if (p < n && (is_xdigit((unsigned char)s[p]) || s[p] == '.')) {
      p++;
    } else {
      break;
    }
  }
  if (p < n && is_alpha((unsigned char)s[p])) p++;
  return p;
}

/* End of the last token before p: skips white space and the comments recorded so far. */
static size_t token_end_before(const struct xlate *x, size_t p) {
  while (p > 0 && is_space((unsigned char)x->src[p - 1])) p--;
  if (p > x->cm_start && p <= x->cm_end) p = x->cm_prev;
  return p;
}

/* Skip the comment at p ("--"), remembering it so that backward looks can step over it. */
static size_t comment_skip(struct xlate *x, size_t p) {
  const char *s = x->src;
  size_t n = x->len, q = p + 2, end;
  size_t level = (q < n && s[q] == '[') ? long_level(s, n, q) : SIZE_MAX;
  if (level != SIZE_MAX) {
    end = long_skip(s, n, q + level + 2, level);
    if (end == SIZE_MAX) return SIZE_MAX;
  } else {
    end = line_end(s, n, q);
  }
  x->cm_prev = token_end_before(x, p);
  x->cm_start = p;
  x->cm_end = end;
  return end;
}

/* The token at or after p. ST_BAIL on a lexical error. */
static int lex(struct xlate *x, size_t p, struct token *t) {
  const char *s = x->src;
  size_t n = x->len, q;
  int kind = TK_OP;
  unsigned char c;
  for (;;) {
    while (p < n && is_space((unsigned char)s[p])) p++;
    if (p + 1 < n && s[p] == '-' && s[p + 1] == '-') {
      p = comment_skip(x, p);
      if (p == SIZE_MAX) return ST_BAIL;
      continue;
    }
    break;
  }
  t->start = p;
  if (p >= n) {
    t->kind = TK_EOF;
    t->end = n;
    return ST_OK;
  }
  c = (unsigned char)s[p];
  q = p + 1;
  if (is_alpha(c)) {
    while (q < n && is_ident((unsigned char)s[q])) q++;
    kind = word_kind(s + p, q - p);
  } else if (is_digit(c)) {
    q = numeral_skip(s, n, p);
    kind = TK_NUMBER;
  } else {
    switch (c) {
      case '"':
      case '\'':
        q = string_skip(s, n, p);
        if (q == SIZE_MAX) return ST_BAIL;
        kind = TK_STRING;
        break;
      case '[': {
        size_t level = long_level(s, n, p);
        if (level != SIZE_MAX) {
          q = long_skip(s, n, p + level + 2, level);
          if (q == SIZE_MAX) return ST_BAIL;
          kind = TK_STRING;
        } else if (q < n && s[q] == '=') {
          return ST_BAIL; /* invalid long string delimiter */
        } else {
          kind = TK_LBRACKET;
        }
        break;
      }
      case '.':
        if (q < n && s[q] == '.') {
          q++;
          if (q < n && s[q] == '.') {
            q++;
            kind = TK_DOTS;
          }
        } else if (q < n && is_digit((unsigned char)s[q])) {
          q = numeral_skip(s, n, q);
          kind = TK_NUMBER;
        } else {
          kind = TK_DOT;
        }
        break;
      case ':':
        kind = TK_COLON;
        if (q < n && s[q] == ':') {
          q++;
          kind = TK_DBCOLON;
        }
        break;
      case '=':
      case '~':
        if (q < n && s[q] == '=') q++;
        break;
      case '<':
      case '>':
      case '/':
        if (q < n && (s[q] == '=' || s[q] == (char)c)) q++;
        break;
      case '(': kind = TK_LPAREN; break;
      case ')': kind = TK_RPAREN; break;
      case ']': kind = TK_RBRACKET; break;
      case '{': kind = TK_LBRACE; break;
      case '}': kind = TK_RBRACE; break;
      case ';': kind = TK_SEMI; break;
      case '#': kind = TK_HASH; break;
      default: break;
    }
  }
  t->kind = kind;
  t->end = q;
  return ST_OK;
}

/* Kind of the token that ends just before p (TK_EOF: none, start of the chunk). */
static int prev_kind(const struct xlate *x, size_t p) {
  const char *s = x->src;
  size_t q = token_end_before(x, p), a;
  unsigned char c;
  if (q == 0) return TK_EOF;
  c = (unsigned char)s[q - 1];
  if (is_ident(c)) {
    a = q - 1;
    while (a > 0 && is_ident((unsigned char)s[a - 1])) a--;
    return is_digit((unsigned char)s[a]) ? TK_NUMBER : word_kind(s + a, q - a);
  }
  switch (c) {
    case '"':
    case '\'': return TK_STRING;
    case ')': return TK_RPAREN;
    case ']': return TK_RBRACKET; /* or a long string: both end an expression */
    case '}': return TK_RBRACE;
    case ';': return TK_SEMI;
    case ':': return (q >= 2 && s[q - 2] == ':') ? TK_DBCOLON : TK_COLON;
    case '.':
      if (q >= 2 && s[q - 2] == '.') return (q >= 3 && s[q - 3] == '.') ? TK_DOTS : TK_OP;
      return TK_DOT;
    default: return TK_OP;
  }
}

/* Can a statement start right after a token of this kind? */
static int ends_statement(int kind) {
  switch (kind) {
    case TK_EOF:
    case TK_NAME:
    case TK_ASYNC:
    case TK_AWAIT:
    case TK_NUMBER:
    case TK_STRING:
    case TK_DOTS:
    case TK_RPAREN:
    case TK_RBRACKET:
    case TK_RBRACE:
    case TK_SEMI:
    case TK_NIL:
    case TK_TRUE:
    case TK_FALSE:
    case TK_END:
    case TK_DO:
    case TK_THEN:
    case TK_ELSE:
    case TK_REPEAT:
    case TK_BREAK: return 1;
    default: return 0;
  }
}

/* Tokens that can neither continue an expression nor follow a complete one: after
   `async`/`await` they make plain Lua fail, or glue a second statement on. */
static int starts_operand(int kind) {
  switch (kind) {
    case TK_NAME:
    case TK_ASYNC:
    case TK_AWAIT:
    case TK_NUMBER:
    case TK_DOTS:
    case TK_HASH:
    case TK_NIL:
    case TK_TRUE:
    case TK_FALSE:
    case TK_NOT:
    case TK_FUNCTION:
    case TK_LOCAL:
    case TK_IF:
    case TK_WHILE:
    case TK_FOR:
    case TK_REPEAT:
    case TK_RETURN:
    case TK_BREAK:
    case TK_GOTO: return 1;
    default: return 0;
  }
}

static int gap_has_newline(const struct xlate *x, size_t a, size_t b) {
  for (; a < b; a++)
    if (is_newline((unsigned char)x->src[a])) return 1;
  return 0;
}

/* ---- errors ---- */

static int fail(struct xlate *x, const struct token *t, const char *msg) {
  struct syntax_output *r = x->res;
  r->line = line_at(x->src, t->start);
  snprintf(r->msg, sizeof r->msg, "%s", msg);
  r->near = t->kind == TK_EOF ? NULL : x->src + t->start;
  r->near_len = t->end - t->start;
  return ST_ERROR;
}

static int fail_unclosed(struct xlate *x, const struct frame *f) {
  struct syntax_output *r = x->res;
  int opened = line_at(x->src, f->pos);
  r->line = line_at(x->src, x->len);
  if (opened == r->line)
    snprintf(r->msg, sizeof r->msg, "'end' expected");
  else
    snprintf(r->msg, sizeof r->msg, "'end' expected (to close 'function' at line %d)", opened);
  r->near = NULL;
  r->near_len = 0;
  return ST_ERROR;
}

/* ---- output ---- */

/* Room for n more bytes: the first call allocates a little more than the input. */
static int out_grow(struct xlate *x, size_t n) {
  size_t cap = x->out_cap ? x->out_cap : x->len + x->len / 8 + 64;
  char *p;
  while (cap - x->out_len < n) {
    if (cap > SIZE_MAX / 2) return ST_NOMEM;
    cap *= 2;
  }
  p = realloc(x->out, cap);
  if (!p) return ST_NOMEM;
  x->out = p;
  x->out_cap = cap;
  return ST_OK;
}

static int out_text(struct xlate *x, const char *s, size_t n) {
  if ((!x->out || x->out_cap - x->out_len < n) && out_grow(x, n) != ST_OK) return ST_NOMEM;
  memcpy(x->out + x->out_len, s, n);
  x->out_len += n;
  return ST_OK;
}

#define OUT_LIT(x, lit) out_text((x), (lit), sizeof(lit) - 1)

/* Copy the input up to `upto`. */
static int out_copy(struct xlate *x, size_t upto) {
  int st = out_text(x, x->src + x->copied, upto - x->copied);
  x->copied = upto;
  return st;
}

static int is_blank(const struct xlate *x, size_t a, size_t b) {
  for (; a < b; a++)
    if (x->src[a] != ' ' && x->src[a] != '\t') return 0;
  return 1;
}

/* Copy the gap between two tokens up to `upto`, unless it is only blanks. A "\r" and a
   "\n" that dropped tokens kept apart stay apart, or two line breaks would become one. */
static int out_gap(struct xlate *x, size_t upto) {
  char last, next;
  if (is_blank(x, x->copied, upto)) {
    x->copied = upto;
    return ST_OK;
  }
  last = x->out_len ? x->out[x->out_len - 1] : 0;
  next = x->src[x->copied];
  if (is_newline((unsigned char)last) && is_newline((unsigned char)next) && last != next &&
      OUT_LIT(x, " ") != ST_OK)
    return ST_NOMEM;
  return out_copy(x, upto);
}

/* Write the name tokens in [a, b) without what lies between them; ':' becomes `colon`. */
static int out_name(struct xlate *x, size_t a, size_t b, char colon) {
  size_t cm_start = x->cm_start, cm_end = x->cm_end, cm_prev = x->cm_prev, p;
  struct token t;
  int st = ST_OK;
  for (p = a; p < b && (is_ident((unsigned char)x->src[p]) || x->src[p] == '.'); p++)
    ;
  if (p == b || x->src[p] == ':') { /* the usual a.b:c with nothing in between */
    if (out_text(x, x->src + a, p - a) != ST_OK) return ST_NOMEM;
    if (p == b) return ST_OK;
    a = p;
  }
  while (st == ST_OK && a < b) {
    if (lex(x, a, &t) != ST_OK || t.start >= b) break;
    if (t.kind == TK_COLON)
      st = out_text(x, &colon, 1);
    else
      st = out_text(x, x->src + t.start, t.end - t.start);
    a = t.end;
  }
  x->cm_start = cm_start;
  x->cm_end = cm_end;
  x->cm_prev = cm_prev;
  return st;
}

/* ---- the stack of open constructs ---- */

static struct frame *top(struct xlate *x) { return x->depth ? &x->stack[x->depth - 1] : NULL; }

static int is_bracket(int kind) { return kind >= F_PAREN && kind <= F_BRACE; }

static int push(struct xlate *x, int kind, size_t pos) {
  struct frame *f;
  if (x->depth == x->cap) {
    size_t cap = x->cap * 2;
    struct frame *p =
        x->stack == x->stack0 ? malloc(cap * sizeof *p) : realloc(x->stack, cap * sizeof *p);
    if (!p) return ST_NOMEM;
    if (x->stack == x->stack0) memcpy(p, x->stack0, sizeof x->stack0);
    x->stack = p;
    x->cap = cap;
  }
  f = &x->stack[x->depth++];
  f->kind = (unsigned char)kind;
  f->state = AW_PRIMARY;
  f->named = f->method = 0;
  f->fast = FAST_NO;
  f->pos = pos;
  return ST_OK;
}

/* Close every await whose operand was the construct that just ended at `at`. */
static int awaits_done(struct xlate *x, size_t at) {
  struct frame *f;
  while ((f = top(x)) && f->kind == F_AWAIT && f->state == AW_INNER) {
    if (out_copy(x, at) != ST_OK || OUT_LIT(x, ")") != ST_OK) return ST_NOMEM;
    x->depth--;
  }
  return ST_OK;
}

/* Inserts n bytes of text at offset `at` of the output. */
static int out_insert(struct xlate *x, size_t at, const char *text, size_t n) {
  if (x->out_cap - x->out_len < n && out_grow(x, n) != ST_OK) return ST_NOMEM;
  memmove(x->out + at + n, x->out + at, x->out_len - at);
  memcpy(x->out + at, text, n);
  x->out_len += n;
  return ST_OK;
}

/* `await f(args)` with f a name or a dotted chain becomes `await(await, f)(args)`: await
   given itself is await_call (await.c), which returns what to call with the arguments:
   inside a task, an async function's body itself, which then runs without the coroutine
   object `f(args)` would make. Two insertions: ")" before the call's "(", and
   "await, " after "await(" (the later first, so the earlier offset holds). */
static int await_close_fast(struct xlate *x, struct frame *f, size_t at) {
  if (out_copy(x, at) != ST_OK || out_insert(x, f->call_out, ")", 1) != ST_OK ||
      out_insert(x, f->open_out + sizeof "await(" - 1, "await, ", sizeof "await, " - 1) != ST_OK)
    return ST_NOMEM;
  x->depth--;
  return awaits_done(x, at);
}

/* Close the await on top at `at`, and the awaits it was the operand of. */
static int await_close(struct xlate *x, size_t at) {
  struct frame *f = top(x);
  if (f->fast == FAST_CALL) return await_close_fast(x, f, at);
  if (out_copy(x, at) != ST_OK || OUT_LIT(x, ")") != ST_OK) return ST_NOMEM;
  x->depth--;
  return awaits_done(x, at);
}

static int block_end(struct xlate *x, const struct token *t) {
  struct frame *f = top(x);
  int st = ST_OK;
  if (!f) return ST_OK;
  if (f->kind == F_AWAIT || f->kind == F_REPEAT || is_bracket(f->kind)) return ST_BAIL;
  if (f->kind == F_ASYNC) {
    st = out_copy(x, t->end);
    if (st == ST_OK && f->named) {
      if (OUT_LIT(x, ", \"") != ST_OK || out_name(x, f->name_start, f->name_end, ':') != ST_OK)
        return ST_NOMEM;
      st = OUT_LIT(x, "\")");
    } else if (st == ST_OK) {
      st = OUT_LIT(x, ")");
    }
    if (st != ST_OK) return st;
  }
  x->depth--;
  return awaits_done(x, t->end);
}

static int block_until(struct xlate *x) {
  struct frame *f = top(x);
  if (!f) return ST_OK;
  if (f->kind != F_REPEAT) return ST_BAIL;
  x->depth--;
  return ST_OK;
}

/* A closing bracket: ends a tracked one, or one the skimmer let pass untracked. */
static int bracket_close(struct xlate *x, const struct token *t) {
  struct frame *f = top(x);
  int want = t->kind == TK_RPAREN ? F_PAREN : t->kind == TK_RBRACKET ? F_BRACKET : F_BRACE;
  if (!f || !is_bracket(f->kind)) return ST_OK;
  if (f->kind != want) return ST_BAIL;
  x->depth--;
  return ST_OK;
}

/* ---- the keywords ---- */

/* `[local] async function NAME(`: w is `async`, fn is `function`, name the token after it. */
static int async_named(struct xlate *x, const struct token *w, const struct token *fn,
                       const struct token *name, int is_local, size_t *pos) {
  struct token t, h;
  size_t name_end, p;
  int method = 0, st;
  if (!is_name(name->kind)) return fail(x, name, "<name> expected");
  for (name_end = name->end;
       !is_local && !method && name_end + 1 < x->len &&
       (x->src[name_end] == '.' || x->src[name_end] == ':') &&
       is_alpha((unsigned char)x->src[name_end + 1]);) { /* a.b:c with nothing between */
    method = x->src[name_end] == ':';
    for (name_end += 2; name_end < x->len && is_ident((unsigned char)x->src[name_end]); name_end++)
      ;
  }
  if ((st = lex(x, name_end, &t)) != ST_OK) return st;
  while (!is_local && !method && (t.kind == TK_DOT || t.kind == TK_COLON)) {
    method = t.kind == TK_COLON;
    if ((st = lex(x, t.end, &t)) != ST_OK) return st;
    if (!is_name(t.kind)) return fail(x, &t, "<name> expected");
    name_end = t.end;
    if ((st = lex(x, t.end, &t)) != ST_OK) return st;
  }
  if (t.kind != TK_LPAREN) return fail(x, &t, "'(' expected");

  /* "NAME = async(function" ("NAME; NAME = ..." for local), then the gaps */
  if (out_copy(x, w->start) != ST_OK) return ST_NOMEM;
  if (is_local && (out_name(x, name->start, name_end, '.') != ST_OK || OUT_LIT(x, "; ") != ST_OK))
    return ST_NOMEM;
  if (out_name(x, name->start, name_end, '.') != ST_OK || OUT_LIT(x, " = async(function") != ST_OK)
    return ST_NOMEM;
  for (p = w->start; p < t.start; p++) {
    char c = x->src[p];
    if (!is_ident((unsigned char)c) && c != '.' && c != ':' && c != ' ' && c != '\t') break;
  }
  if (p == t.start) /* nothing but the tokens and blanks */
    x->copied = t.start;
  for (p = w->start; x->copied < t.start; p = h.end) {
    /* drop the tokens, keep comments and line breaks */
    lex(x, p, &h); /* lexed above already */
    if (out_gap(x, h.start) != ST_OK) return ST_NOMEM;
    if (h.start < t.start) x->copied = h.end;
  }
  if (out_copy(x, t.end) != ST_OK) return ST_NOMEM;
  if (method) {
    struct token nx;
    if ((st = lex(x, t.end, &nx)) != ST_OK) return st;
    st = nx.kind == TK_RPAREN ? OUT_LIT(x, "self") : OUT_LIT(x, "self, ");
    if (st != ST_OK) return st;
  }
  if ((st = push(x, F_ASYNC, fn->start)) != ST_OK) return st;
  x->stack[x->depth - 1].named = 1;
  x->stack[x->depth - 1].method = (unsigned char)method;
  x->stack[x->depth - 1].name_start = name->start;
  x->stack[x->depth - 1].name_end = name_end;
  *pos = x->prev_end = t.end;
  return ST_OK;
}

/* `async` followed on its line by nx. */
static int async_open(struct xlate *x, const struct token *w, const struct token *nx, int pk,
                      int *plain, size_t *pos) {
  struct frame *f = top(x);
  int in_operand = f && f->kind == F_AWAIT && f->state == AW_PRIMARY;
  struct token t;
  int st;
  if (nx->kind != TK_FUNCTION) {
    if (pk != TK_LOCAL && starts_operand(nx->kind))
      return fail(x, nx, "'function' expected after 'async'");
    return ST_OK;
  }
  *plain = 0;
  if ((st = lex(x, nx->end, &t)) != ST_OK) return st;
  if (pk == TK_LOCAL) return async_named(x, w, nx, &t, 1, pos);
  if (t.kind == TK_LPAREN) { /* the expression: async(function(...) ... end) */
    if (in_operand) f->state = AW_INNER;
    if (out_copy(x, w->end) != ST_OK || OUT_LIT(x, "(") != ST_OK || out_gap(x, nx->start) != ST_OK)
      return ST_NOMEM;
    if ((st = push(x, F_ASYNC, nx->start)) != ST_OK) return st;
    *pos = x->prev_end = nx->end;
    return ST_OK;
  }
  if (in_operand || !ends_statement(pk)) return fail(x, &t, "'(' expected");
  return async_named(x, w, nx, &t, 0, pos);
}

/* `await` followed on its line by nx. */
static int await_open(struct xlate *x, const struct token *w, const struct token *nx, int *plain,
                      size_t *pos) {
  struct frame *f = top(x);
  int st;
  switch (nx->kind) {
    case TK_NAME:
    case TK_ASYNC:
    case TK_AWAIT:
    case TK_NIL:
    case TK_TRUE:
    case TK_FALSE:
    case TK_FUNCTION: break;
    default:
      if (starts_operand(nx->kind)) return fail(x, nx, "expression expected after 'await'");
      return ST_OK;
  }
  *plain = 0;
  if (f && f->kind == F_AWAIT && f->state == AW_PRIMARY) f->state = AW_INNER;
  if (out_copy(x, w->end) != ST_OK || OUT_LIT(x, "(") != ST_OK) return ST_NOMEM;
  size_t open_out = x->out_len - (sizeof "await(" - 1);
  if (out_gap(x, nx->start) != ST_OK) return ST_NOMEM;
  if ((st = push(x, F_AWAIT, w->start)) != ST_OK) return st;
  top(x)->open_out = open_out;
  *pos = x->prev_end = x->ahead_at = w->end; /* the operand's first token: lexed already */
  x->ahead = *nx;
  return ST_OK;
}

/* The word `async` or `await` at w: a keyword, or (*plain) just a name. */
static int word_keyword(struct xlate *x, const struct token *w, int *plain, size_t *pos) {
  int pk = prev_kind(x, w->start), st;
  struct token nx;
  *plain = 1;
  switch (pk) {
    case TK_DOT:
    case TK_COLON:
    case TK_DBCOLON:
    case TK_GOTO: return ST_OK;
    case TK_FUNCTION:
      x->no_fast |= w->kind == TK_AWAIT; /* `function await(...)`: the chunk's own await */
      return ST_OK;
    case TK_LOCAL:
      if (w->kind == TK_AWAIT) {
        x->no_fast = 1;
        return ST_OK;
      }
      break;
    default: break;
  }
  if ((st = lex(x, w->end, &nx)) != ST_OK) return st;
  if (nx.kind != TK_EOF && !gap_has_newline(x, w->end, nx.start)) {
    st = w->kind == TK_AWAIT ? await_open(x, w, &nx, plain, pos)
                             : async_open(x, w, &nx, pk, plain, pos);
    if (st != ST_OK) return st;
  }
  /* a plain `await` that is not called may be the chunk's own (assigned, a parameter),
     which may not know await(await, f): no `await f(args)` fast path from here on */
  if (*plain && w->kind == TK_AWAIT && nx.kind != TK_LPAREN) x->no_fast = 1;
  return ST_OK;
}

/* ---- scanning ---- */

/* What the skimmer must find, by the construct on top of the stack. */
enum {
  SK_TOP,    /* nothing open: keywords only */
  SK_BLOCK,  /* a block: keywords and block words */
  SK_BRACKET /* a bracket inside an await operand: keywords, `function`, brackets */
};

#if SKIM_VECTORS
/* Bit i: p[i] may start a string, a comment, a bracket or a word the skimmer wants: the
   test of skim_hit below for 16 positions. Reads p[0..17]. */
static uint32_t skim_mask(const unsigned char *p, int mode) {
  typedef skim_v16 v;
  v a, b, c, other, word;
  memcpy(&a, p, sizeof a);
  memcpy(&b, p + 1, sizeof b);
  memcpy(&c, p + 2, sizeof c);
  other = (v)(a == '"') | (v)(a == '\'') | ((v)(a == '-') & (v)(b == '-')) |
          ((v)(a == '[') & ((v)(b == '[') | (v)(b == '=')));
  word = (v)(a == 'a') & (((v)(b == 'w') & (v)(c == 'a')) | ((v)(b == 's') & (v)(c == 'y')));
  if (mode == SK_BLOCK) {
    word |= ((v)(a == 'f') & (v)(b == 'u') & (v)(c == 'n')) | ((v)(a == 'd') & (v)(b == 'o')) |
            ((v)(a == 'i') & (v)(b == 'f')) | ((v)(a == 'r') & (v)(b == 'e') & (v)(c == 'p')) |
            ((v)(a == 'e') & (v)(b == 'n') & (v)(c == 'd')) |
            ((v)(a == 'u') & (v)(b == 'n') & (v)(c == 't'));
  } else if (mode == SK_BRACKET) {
    word |= (v)(a == 'f') & (v)(b == 'u') & (v)(c == 'n');
    other |= (v)(a == '(') | (v)(a == ')') | (v)(a == '[') | (v)(a == ']') | (v)(a == '{') |
             (v)(a == '}');
  }
  return (uint32_t)_mm_movemask_epi8((__m128i)(other | word));
}
#endif

/* The same test for one position. */
static int skim_hit(const unsigned char *s, size_t n, size_t p, int mode) {
  unsigned char c = s[p], d = p + 1 < n ? s[p + 1] : 0, e = p + 2 < n ? s[p + 2] : 0;
  switch (c) {
    case '"':
    case '\'': return 1;
    case '-': return d == '-';
    case '[': return d == '[' || d == '=' || mode == SK_BRACKET;
    case '(':
    case ')':
    case ']':
    case '{':
    case '}': return mode == SK_BRACKET;
    default: break;
  }
  switch (c) {
    case 'a': return (d == 'w' && e == 'a') || (d == 's' && e == 'y');
    case 'f': return d == 'u' && e == 'n' && mode != SK_TOP;
    case 'd': return d == 'o' && mode == SK_BLOCK;
    case 'i': return d == 'f' && mode == SK_BLOCK;
    case 'r': return d == 'e' && e == 'p' && mode == SK_BLOCK;
    case 'e': return d == 'n' && e == 'd' && mode == SK_BLOCK;
    case 'u': return d == 'n' && e == 't' && mode == SK_BLOCK;
    default: return 0;
  }
}

/* Is the word async or await at p? */
static int keyword_at(const unsigned char *s, size_t n, size_t p) {
  return (p == 0 || !is_ident(s[p - 1])) && n - p >= 5 &&
         (memcmp(s + p, "await", 5) == 0 || memcmp(s + p, "async", 5) == 0) &&
         (n - p == 5 || !is_ident(s[p + 5]));
}

/* Does either word occur anywhere, strings and comments included? Most Lua has neither,
   and is then done at once. */
static int keywords_present(const char *src, size_t n) {
  const unsigned char *s = (const unsigned char *)src;
  size_t p = 0;
#if SKIM_VECTORS
  for (; p + 18 <= n; p += 16) {
    typedef skim_v16 v;
    v a, b, c;
    uint32_t m;
    memcpy(&a, s + p, sizeof a);
    memcpy(&b, s + p + 1, sizeof b);
    memcpy(&c, s + p + 2, sizeof c);
    m = (uint32_t)_mm_movemask_epi8((__m128i)((v)(a == 'a') & (((v)(b == 'w') & (v)(c == 'a')) |
                                                               ((v)(b == 's') & (v)(c == 'y')))));
    for (; m; m &= m - 1)
      if (keyword_at(s, n, p + (size_t)__builtin_ctz(m))) return 1;
  }
#endif
  for (; p < n; p++)
    if (s[p] == 'a' && keyword_at(s, n, p)) return 1;
  return 0;
}

/* Next position at or after p worth a look (x->len if none). */
static size_t skim_find(struct xlate *x, size_t p, int mode) {
  const unsigned char *s = (const unsigned char *)x->src;
  size_t n = x->len;
#if SKIM_VECTORS
  uint32_t m;
  if (mode == x->mask_mode && p >= x->mask_base && p - x->mask_base < 16) {
    m = x->mask_bits & (~(uint32_t)0 << (p - x->mask_base));
    if (m) return x->mask_base + (size_t)__builtin_ctz(m);
    p = x->mask_base + 16;
  }
  for (; p + 18 <= n; p += 16) {
    if ((m = skim_mask(s + p, mode)) != 0) {
      x->mask_base = p;
      x->mask_bits = m;
      x->mask_mode = mode;
      return p + (size_t)__builtin_ctz(m);
    }
  }
#endif
  for (; p < n; p++)
    if (skim_hit(s, n, p, mode)) return p;
  return n;
}

/* A word found by either mode. */
static int word_event(struct xlate *x, const struct token *t, size_t *pos) {
  int plain;
  switch (t->kind) {
    case TK_ASYNC:
    case TK_AWAIT: return word_keyword(x, t, &plain, pos);
    case TK_FUNCTION:
    case TK_DO:
    case TK_IF: return push(x, F_BLOCK, t->start);
    case TK_REPEAT: return push(x, F_REPEAT, t->start);
    case TK_END: return block_end(x, t);
    case TK_UNTIL: return block_until(x);
    default: return ST_OK;
  }
}

/* Skim from *pos to the next event and handle it. */
static int step_skim(struct xlate *x, size_t *pos, int mode) {
  const char *s = x->src;
  size_t n = x->len, p = skim_find(x, *pos, mode), e;
  struct token t;
  if (p >= n) {
    *pos = n;
    return ST_EOF;
  }
  t.start = p;
  t.end = e = p + 1;
  switch (s[p]) {
    case '"':
    case '\'': e = string_skip(s, n, p); break;
    case '-': e = comment_skip(x, p); break;
    case '[': {
      size_t level = long_level(s, n, p);
      if (level != SIZE_MAX)
        e = long_skip(s, n, p + level + 2, level);
      else if (e < n && s[e] == '=')
        e = SIZE_MAX; /* invalid long string delimiter */
      else
        return *pos = x->prev_end = e, push(x, F_BRACKET, p);
      break;
    }
    case '(': return *pos = x->prev_end = e, push(x, F_PAREN, p);
    case '{': return *pos = x->prev_end = e, push(x, F_BRACE, p);
    case ')':
    case ']':
    case '}':
      t.kind = s[p] == ')' ? TK_RPAREN : s[p] == ']' ? TK_RBRACKET : TK_RBRACE;
      *pos = x->prev_end = e;
      return bracket_close(x, &t);
    default:
      while (e < n && is_ident((unsigned char)s[e])) e++;
      *pos = e;
      if (p > 0 && is_ident((unsigned char)s[p - 1])) return ST_OK; /* inside a longer word */
      t.kind = word_kind(s + p, e - p);
      t.end = x->prev_end = e;
      return word_event(x, &t, pos);
  }
  if (e == SIZE_MAX) return ST_BAIL;
  *pos = e;
  return ST_OK;
}

/* One token of the await operand on top. */
static int step_precise(struct xlate *x, size_t *pos) {
  struct frame *f = top(x);
  struct token t = x->ahead;
  int st = *pos == x->ahead_at ? ST_OK : lex(x, *pos, &t), plain;
  x->ahead_at = SIZE_MAX;
  if (st != ST_OK) return st;
  *pos = t.end;
  switch (f->state) {
    case AW_PRIMARY:
      if (t.kind == TK_NAME) { /* take a.b.c:d whole when nothing lies between */
        const char *s = x->src;
        size_t p = t.end, n = x->len;
        f->state = AW_SUFFIX;
        while (f->state == AW_SUFFIX && p + 1 < n && (s[p] == '.' || s[p] == ':') &&
               is_alpha((unsigned char)s[p + 1])) {
          f->state = s[p] == ':' ? AW_ARGS : AW_SUFFIX;
          for (p += 2; p < n && is_ident((unsigned char)s[p]); p++)
            ;
        }
        f->fast = f->state == AW_SUFFIX && !x->no_fast ? FAST_CHAIN : FAST_NO;
        *pos = x->prev_end = p;
        return ST_OK;
      }
      if (t.kind == TK_NIL || t.kind == TK_TRUE || t.kind == TK_FALSE) {
        x->prev_end = t.end;
        return await_close(x, t.end);
      }
      if (t.kind == TK_FUNCTION) f->state = AW_INNER;
      break;
    case AW_DOT:
    case AW_COLON:
      f->fast = FAST_NO;
      if (!is_name(t.kind)) return fail(x, &t, "<name> expected");
      f->state = f->state == AW_DOT ? AW_SUFFIX : AW_ARGS;
      x->prev_end = t.end;
      return ST_OK;
    case AW_ARGS:
      if (t.kind != TK_LPAREN && t.kind != TK_LBRACE && t.kind != TK_STRING)
        return fail(x, &t, "function arguments expected");
      f->state = AW_SUFFIX;
      break;
    default:                                              /* AW_SUFFIX */
      if (t.kind == TK_LPAREN && f->fast == FAST_CHAIN) { /* the call of name.chain */
        if (out_copy(x, t.start) != ST_OK) return ST_NOMEM;
        f->fast = FAST_CALL;
        f->call_out = x->out_len;
      } else if (t.kind == TK_DOT || t.kind == TK_COLON || t.kind == TK_STRING ||
                 t.kind == TK_LPAREN || t.kind == TK_LBRACKET || t.kind == TK_LBRACE) {
        f->fast = FAST_NO; /* more after the call, or another kind of call */
      }
      if (t.kind == TK_DOT || t.kind == TK_COLON) {
        f->state = t.kind == TK_DOT ? AW_DOT : AW_COLON;
        x->prev_end = t.end;
        return ST_OK;
      }
      if (t.kind != TK_STRING && t.kind != TK_LPAREN && t.kind != TK_LBRACKET &&
          t.kind != TK_LBRACE && (st = await_close(x, x->prev_end)) != ST_OK)
        return st;
      break;
  }
  x->prev_end = t.end;
  switch (t.kind) {
    case TK_EOF: return ST_EOF;
    case TK_ASYNC:
    case TK_AWAIT:
      if ((st = word_keyword(x, &t, &plain, pos)) != ST_OK || !plain) return st;
      f = top(x);
      if (f && f->kind == F_AWAIT && f->state == AW_PRIMARY) f->state = AW_SUFFIX;
      return ST_OK;
    case TK_LPAREN: return x->depth ? push(x, F_PAREN, t.start) : ST_OK;
    case TK_LBRACKET: return x->depth ? push(x, F_BRACKET, t.start) : ST_OK;
    case TK_LBRACE: return x->depth ? push(x, F_BRACE, t.start) : ST_OK;
    case TK_RPAREN:
    case TK_RBRACKET:
    case TK_RBRACE: return bracket_close(x, &t);
    default: return word_event(x, &t, pos);
  }
}

/* End of input: operands still open end with their last token; an unclosed async
   function is reported; anything else unclosed is left for Lua to report. */
static int finish(struct xlate *x) {
  struct frame *f = top(x);
  int st;
  if (f && f->kind == F_AWAIT && f->state == AW_SUFFIX &&
      (st = await_close(x, x->prev_end)) != ST_OK)
    return st;
  f = top(x);
  if (f && f->kind == F_ASYNC) return fail_unclosed(x, f);
  return ST_OK;
}

static int run(struct xlate *x, size_t pos) {
  int st;
  for (;;) {
    struct frame *f = top(x);
    if (!f)
      st = step_skim(x, &pos, SK_TOP);
    else if (f->kind == F_AWAIT)
      st = step_precise(x, &pos);
    else
      st = step_skim(x, &pos, is_bracket(f->kind) ? SK_BRACKET : SK_BLOCK);
    if (st == ST_EOF)
      st = finish(x);
    else if (st == ST_OK)
      continue;
    if (st == ST_BAIL) st = ST_OK;
    if (st == ST_OK && x->out) st = out_copy(x, x->len);
    return st;
  }
}

int syntax_translate(const char *src, size_t len, struct syntax_output *out) {
  struct xlate x;
  size_t pos = 0;
  int st;
  memset(out, 0, sizeof *out);
  out->text = src;
  out->len = len;
  if ((len > 0 && src[0] == '\x1b') || !keywords_present(src, len)) /* binary, or nothing to do */
    return SYNTAX_OK;
  memset(&x, 0, sizeof x);
  x.src = src;
  x.len = len;
  x.stack = x.stack0;
  x.cap = sizeof x.stack0 / sizeof x.stack0[0];
  x.mask_base = x.ahead_at = SIZE_MAX;
  x.mask_mode = -1;
  x.res = out;
  if (len > 0 && src[0] == '#') { /* "#!" line, skipped like a comment by loadfile */
    x.cm_end = pos = line_end(src, len, 0);
  }
  st = run(&x, pos);
  if (x.stack != x.stack0) free(x.stack);
  if (st != ST_OK) {
    free(x.out);
    return st == ST_ERROR ? SYNTAX_ERROR : SYNTAX_NOMEM;
  }
  if (x.out) {
    out->text = out->buffer = x.out;
    out->len = x.out_len;
  }
  return SYNTAX_OK;
}

void syntax_output_free(struct syntax_output *out) {
  free(out->buffer);
  out->buffer = NULL;
  out->text = NULL;
  out->len = 0;
}
