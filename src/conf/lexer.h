/* SPDX-License-Identifier: MIT */
/*
 * Tokens of the nginx configuration grammar over a file already in memory.
 * The rules are those of nginx's ngx_conf_read_token():
 *
 *   - whitespace (space, tab, CR, LF) separates words;
 *   - ";", "{" and "}" are tokens of their own when they start a token;
 *     inside an unquoted word ";" and "{" end the word while "}" does not
 *     ("a}" is one word, as in nginx);
 *   - "#" starts a comment to the end of the line when it starts a token;
 *   - "..." and '...' are quoted words that may span lines; after the
 *     closing quote only whitespace, ";", "{" or "}" may follow;
 *   - a backslash keeps the next byte in the word, whatever it is; when the
 *     word is copied, \" \' \\ lose their backslash and \t \r \n become
 *     TAB, CR and LF, while any other \x keeps both bytes, so regexes such as
 *     ~^a\.b$ survive, quoted or not;
 *   - "${" does not end a word: "$" followed by "{" keeps the brace, so
 *     ${var} is part of a word.
 */
#ifndef SNIRELAY_CONF_LEXER_H
#define SNIRELAY_CONF_LEXER_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

enum lexer_tok {
    LEXER_WORD,        /* a word; text and len hold it, escapes resolved */
    LEXER_SEMICOLON,   /* ";" */
    LEXER_BLOCK_START, /* "{" */
    LEXER_BLOCK_END,   /* "}" */
    LEXER_EOF,         /* no more input */
    LEXER_ERROR        /* lexer.err holds the message, lexer.line the line */
};

/* One scan over one file's text; the text must outlive the lexer. */
struct lexer {
    const char *pos;     /* next byte to read */
    const char *end;     /* one past the last byte of the text */
    unsigned line;       /* line of pos, counted from 1 */
    bool need_space;     /* a quoted word just closed */
    bool has_failed;     /* LEXER_ERROR was returned; err is kept */
    struct arena *arena; /* receives the copies of words */
    char err[64];        /* message of the last LEXER_ERROR, no location */
};

/* One token; words live in the lexer's arena. */
struct lexer_token {
    enum lexer_tok kind; /* what was read */
    char *text;          /* LEXER_WORD: NUL-terminated word, else NULL */
    size_t len;          /* bytes in text, without the NUL */
    unsigned line;       /* line of the token's first byte */
    bool is_quoted;      /* LEXER_WORD written between quotes */
};

/*
 * Prepares lx to scan len bytes at text, copying words into a. Nothing is
 * allocated here.
 */
void lexer_init(struct lexer *lx, const char *text, size_t len,
                struct arena *a);

/*
 * Reads the next token into *tok and returns its kind (tok->kind too).
 * Errors, with their nginx wording, are:
 *   unexpected "x"                            after a closing quote;
 *   unexpected end of file, expecting ";" or "}"   inside a quoted word;
 *   memory allocation failed                  when the arena is exhausted.
 * After LEXER_ERROR or LEXER_EOF every further call returns the same kind.
 */
enum lexer_tok lexer_next(struct lexer *lx, struct lexer_token *tok);

#endif
