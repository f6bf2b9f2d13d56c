/* SPDX-License-Identifier: MIT */
/*
 * The configuration lexer: one token per call over a file held in memory.
 * It follows nginx's ngx_conf_read_token() byte for byte where the two can
 * be compared, but returns single tokens; the statement-level errors
 * ("unexpected ;" with no words before it, and so on) belong to the parser.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf/lexer.h"
#include "core/arena.h"

static bool lexer_is_space(char c);
static enum lexer_tok lexer_fail(struct lexer *lx, struct lexer_token *tok,
                                 const char *msg, char c);
static enum lexer_tok lexer_quoted(struct lexer *lx, struct lexer_token *tok,
                                   char quote);
static enum lexer_tok lexer_word(struct lexer *lx, struct lexer_token *tok);
static enum lexer_tok lexer_copy(struct lexer *lx, struct lexer_token *tok,
                                 const char *start, const char *stop);

void
lexer_init(struct lexer *lx, const char *text, size_t len, struct arena *a)
{
    lx->pos = text;
    lx->end = text + len;
    lx->line = 1;
    lx->need_space = false;
    lx->has_failed = false;
    lx->arena = a;
    lx->err[0] = '\0';
}

enum lexer_tok
lexer_next(struct lexer *lx, struct lexer_token *tok)
{
    tok->text = NULL;
    tok->len = 0;
    tok->is_quoted = false;

    if (lx->has_failed) {
        tok->kind = LEXER_ERROR;
        tok->line = lx->line;
        return LEXER_ERROR;
    }

    /* nginx: after a closing quote only a separator may follow. */
    if (lx->need_space) {
        lx->need_space = false;
        if (lx->pos < lx->end && !lexer_is_space(*lx->pos) && *lx->pos != ';' &&
            *lx->pos != '{' && *lx->pos != '}') {
            return lexer_fail(lx, tok, "unexpected", *lx->pos);
        }
    }

    while (lx->pos < lx->end) {
        const char c = *lx->pos;

        if (c == '\n') {
            lx->line++;
        }
        if (lexer_is_space(c)) {
            lx->pos++;
            continue;
        }
        if (c != '#') {
            break;
        }
        while (lx->pos < lx->end && *lx->pos != '\n') {
            lx->pos++;
        }
    }

    tok->line = lx->line;
    if (lx->pos == lx->end) {
        tok->kind = LEXER_EOF;
        return LEXER_EOF;
    }

    switch (*lx->pos) {
    case ';':
        lx->pos++;
        tok->kind = LEXER_SEMICOLON;
        return LEXER_SEMICOLON;
    case '{':
        lx->pos++;
        tok->kind = LEXER_BLOCK_START;
        return LEXER_BLOCK_START;
    case '}':
        lx->pos++;
        tok->kind = LEXER_BLOCK_END;
        return LEXER_BLOCK_END;
    case '"':
    case '\'':
        return lexer_quoted(lx, tok, *lx->pos++);
    default:
        return lexer_word(lx, tok);
    }
}

static bool
lexer_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Records an error: msg alone, or `msg "c"` when c is not NUL (bytes that
 * are not printable are shown as \xHH). Later calls keep failing.
 */
static enum lexer_tok
lexer_fail(struct lexer *lx, struct lexer_token *tok, const char *msg, char c)
{
    const unsigned char uc = (unsigned char)c;

    if (c == '\0') {
        snprintf(lx->err, sizeof(lx->err), "%s", msg);
    } else if (uc >= 0x20 && uc < 0x7f) {
        snprintf(lx->err, sizeof(lx->err), "%s \"%c\"", msg, c);
    } else {
        snprintf(lx->err, sizeof(lx->err), "%s \"\\x%02X\"", msg, uc);
    }
    lx->has_failed = true;
    tok->kind = LEXER_ERROR;
    tok->line = lx->line;
    return LEXER_ERROR;
}

/* Reads a quoted word; the opening quote has been consumed. */
static enum lexer_tok
lexer_quoted(struct lexer *lx, struct lexer_token *tok, char quote)
{
    const char *const start = lx->pos;

    while (lx->pos < lx->end) {
        const char c = *lx->pos++;

        if (c == '\n') {
            lx->line++;
        }
        if (c == '\\') {
            /* The escaped byte never closes the word. */
            if (lx->pos < lx->end) {
                if (*lx->pos == '\n') {
                    lx->line++;
                }
                lx->pos++;
            }
            continue;
        }
        if (c == quote) {
            lx->need_space = true;
            tok->is_quoted = true;
            return lexer_copy(lx, tok, start, lx->pos - 1);
        }
    }
    return lexer_fail(lx, tok,
                      "unexpected end of file, expecting \";\" or \"}\"", 0);
}

/* Reads an unquoted word starting at lx->pos. */
static enum lexer_tok
lexer_word(struct lexer *lx, struct lexer_token *tok)
{
    const char *const start = lx->pos;
    bool is_variable = false;

    while (lx->pos < lx->end) {
        const char c = *lx->pos;

        if (c == '{' && is_variable) {
            /* "${name}": the brace belongs to the variable. */
            lx->pos++;
            continue;
        }
        is_variable = false;
        if (lexer_is_space(c) || c == ';' || c == '{') {
            break;
        }
        lx->pos++;
        if (c == '\\') {
            if (lx->pos < lx->end) {
                if (*lx->pos == '\n') {
                    lx->line++;
                }
                lx->pos++;
            }
        } else if (c == '$') {
            is_variable = true;
        }
    }
    return lexer_copy(lx, tok, start, lx->pos);
}

/*
 * Copies [start, stop) into the arena as tok's text, resolving escapes as
 * nginx does: \" \' \\ drop the backslash, \t \r \n become control bytes,
 * anything else keeps both bytes.
 */
static enum lexer_tok
lexer_copy(struct lexer *lx, struct lexer_token *tok, const char *start,
           const char *stop)
{
    char *const text = arena_alloc(lx->arena, (size_t)(stop - start) + 1);
    char *dst = text;
    const char *src = start;

    if (text == NULL) {
        return lexer_fail(lx, tok, "memory allocation failed", 0);
    }
    while (src < stop) {
        if (*src == '\\' && src + 1 < stop) {
            switch (src[1]) {
            case '"':
            case '\'':
            case '\\':
                src++;
                break;
            case 't':
                *dst++ = '\t';
                src += 2;
                continue;
            case 'r':
                *dst++ = '\r';
                src += 2;
                continue;
            case 'n':
                *dst++ = '\n';
                src += 2;
                continue;
            default:
                break;
            }
        }
        *dst++ = *src++;
    }
    *dst = '\0';
    tok->kind = LEXER_WORD;
    tok->text = text;
    tok->len = (size_t)(dst - text);
    return LEXER_WORD;
}
