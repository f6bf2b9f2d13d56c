/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for conf/lexer. Each input is copied into a heap block of its
 * exact length, without a NUL, so that ASan catches any read past the end.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/lexer.h"
#include "core/arena.h"

/* One expected token; text is only compared for LEXER_WORD. */
struct want {
    enum lexer_tok kind;
    const char *text;
    unsigned line;
};

#define W(t, l)                                                                \
    {                                                                          \
        LEXER_WORD, (t), (l)                                                   \
    }
#define SEMI(l)                                                                \
    {                                                                          \
        LEXER_SEMICOLON, NULL, (l)                                             \
    }
#define OPEN(l)                                                                \
    {                                                                          \
        LEXER_BLOCK_START, NULL, (l)                                           \
    }
#define CLOSE(l)                                                               \
    {                                                                          \
        LEXER_BLOCK_END, NULL, (l)                                             \
    }
#define END(l)                                                                 \
    {                                                                          \
        LEXER_EOF, NULL, (l)                                                   \
    }
#define ERR(msg, l)                                                            \
    {                                                                          \
        LEXER_ERROR, (msg), (l)                                                \
    }

/* Scans text and compares every token with want[0..n). */
static void
check(const char *text, const struct want *want, size_t n)
{
    const size_t len = strlen(text);
    char *const copy = malloc(len > 0 ? len : 1);
    struct arena *const a = arena_new();
    struct lexer lx;

    assert_non_null(copy);
    assert_non_null(a);
    memcpy(copy, text, len);
    lexer_init(&lx, copy, len, a);
    for (size_t i = 0; i < n; i++) {
        struct lexer_token tok;
        const enum lexer_tok kind = lexer_next(&lx, &tok);

        if (kind != want[i].kind || tok.kind != kind) {
            fail_msg("token %zu of \"%s\": kind %d, want %d", i, text,
                     (int)kind, (int)want[i].kind);
        }
        if (tok.line != want[i].line) {
            fail_msg("token %zu of \"%s\": line %u, want %u", i, text, tok.line,
                     want[i].line);
        }
        if (kind == LEXER_WORD) {
            assert_non_null(tok.text);
            assert_string_equal(tok.text, want[i].text);
            assert_int_equal(tok.len, strlen(want[i].text));
        } else if (kind == LEXER_ERROR) {
            assert_string_equal(lx.err, want[i].text);
        } else {
            assert_null(tok.text);
        }
    }
    arena_free(a);
    free(copy);
}

#define CHECK(text, ...)                                                       \
    do {                                                                       \
        const struct want w_[] = {__VA_ARGS__};                                \
        check((text), w_, sizeof(w_) / sizeof(w_[0]));                         \
    } while (0)

static void
test_words_and_punctuation(void **state)
{
    (void)state;
    CHECK("", END(1));
    CHECK("   \t\r\n  ", END(2));
    CHECK("user  nginx;", W("user", 1), W("nginx", 1), SEMI(1), END(1));
    CHECK("events { worker_connections  1024; }\n", W("events", 1), OPEN(1),
          W("worker_connections", 1), W("1024", 1), SEMI(1), CLOSE(1), END(2));
    CHECK("a;b{c}", W("a", 1), SEMI(1), W("b", 1), OPEN(1), W("c}", 1), END(1));
    /* "}" ends nothing inside a word, as in nginx; ";" and "{" do. */
    CHECK("x a} ;", W("x", 1), W("a}", 1), SEMI(1), END(1));
    CHECK("listen 127.0.0.1:443 reuseport;", W("listen", 1),
          W("127.0.0.1:443", 1), W("reuseport", 1), SEMI(1), END(1));
    CHECK(";;{}", SEMI(1), SEMI(1), OPEN(1), CLOSE(1), END(1));
}

static void
test_quotes(void **state)
{
    (void)state;
    CHECK("\"a b\" 'c d';", W("a b", 1), W("c d", 1), SEMI(1), END(1));
    CHECK("\"\" '';", W("", 1), W("", 1), SEMI(1), END(1));
    /* A quote inside the other kind is plain. */
    CHECK("\"it's\" 'say \"hi\"'", W("it's", 1), W("say \"hi\"", 1), END(1));
    /* After a closing quote: space, ";", "{" or "}". */
    CHECK("\"a\";\"b\"{\"c\"}\"d\"\n", W("a", 1), SEMI(1), W("b", 1), OPEN(1),
          W("c", 1), CLOSE(1), W("d", 1), END(2));
    /* A quote inside an unquoted word is an ordinary byte. */
    CHECK("ab\"c\" ;", W("ab\"c\"", 1), SEMI(1), END(1));

    struct lexer_token tok;
    struct lexer lx;
    struct arena *const a = arena_new();

    assert_non_null(a);
    lexer_init(&lx, "'q' w", 5, a);
    assert_int_equal(lexer_next(&lx, &tok), LEXER_WORD);
    assert_true(tok.is_quoted);
    assert_int_equal(lexer_next(&lx, &tok), LEXER_WORD);
    assert_false(tok.is_quoted);
    arena_free(a);
}

static void
test_escapes(void **state)
{
    (void)state;
    CHECK("\"a\\\"b\" 'it\\'s' \"x\\\\y\"", W("a\"b", 1), W("it's", 1),
          W("x\\y", 1), END(1));
    CHECK("\"t\\tr\\rn\\n\"", W("t\tr\rn\n", 1), END(1));
    /* Other escapes keep both bytes, so regexes survive. */
    CHECK("\"~^a\\.b$\" ~^a\\.b$ '\\d+'", W("~^a\\.b$", 1), W("~^a\\.b$", 1),
          W("\\d+", 1), END(1));
    CHECK("~^(www\\.)?(?<name>.+)\\.example\\.com$ 1;",
          W("~^(www\\.)?(?<name>.+)\\.example\\.com$", 1), W("1", 1), SEMI(1),
          END(1));
    /* Escapes are resolved in unquoted words too. */
    CHECK("a\\\"b c\\td", W("a\"b", 1), W("c\td", 1), END(1));
    /* An escaped separator stays in the word, backslash and all. */
    CHECK("a\\ b\\;c;", W("a\\ b\\;c", 1), SEMI(1), END(1));
    /* "\\n" is a backslash and an n. */
    CHECK("\"\\\\n\"", W("\\n", 1), END(1));
    /* A trailing backslash at the end of the text is kept. */
    CHECK("ab\\", W("ab\\", 1), END(1));
}

static void
test_comments(void **state)
{
    (void)state;
    CHECK("# only a comment", END(1));
    CHECK("# one\n# two\nuser x; # trailing { } ;\n  # indented\nz;",
          W("user", 3), W("x", 3), SEMI(3), W("z", 5), SEMI(5), END(5));
    /* "#" inside a word or quotes is not a comment. */
    CHECK("a#b \"c#d\";", W("a#b", 1), W("c#d", 1), SEMI(1), END(1));
    CHECK("a;#x\nb;", W("a", 1), SEMI(1), W("b", 2), SEMI(2), END(2));
}

static void
test_variables(void **state)
{
    (void)state;
    CHECK("proxy_pass ${backend}:443;", W("proxy_pass", 1),
          W("${backend}:443", 1), SEMI(1), END(1));
    CHECK("x a${b}c;", W("x", 1), W("a${b}c", 1), SEMI(1), END(1));
    CHECK("map $ssl_preread_server_name $pool {", W("map", 1),
          W("$ssl_preread_server_name", 1), W("$pool", 1), OPEN(1), END(1));
    /* Only a "{" right after "$" is kept. */
    CHECK("x ${a}{", W("x", 1), W("${a}", 1), OPEN(1), END(1));
    CHECK("x $a{", W("x", 1), W("$a", 1), OPEN(1), END(1));
    CHECK("x \"${a}\";", W("x", 1), W("${a}", 1), SEMI(1), END(1));
}

static void
test_line_numbers(void **state)
{
    (void)state;
    CHECK("a\n\nb\r\n c\n;\n", W("a", 1), W("b", 3), W("c", 4), SEMI(5),
          END(6));
    /* A quoted word spanning lines starts on its first line. */
    CHECK("log_format x 'one\ntwo'\n  'three';", W("log_format", 1), W("x", 1),
          W("one\ntwo", 1), W("three", 3), SEMI(3), END(3));
    /* An escaped newline is still a newline for counting. */
    CHECK("a\\\nb c", W("a\\\nb", 1), W("c", 2), END(2));
    CHECK("\"a\\\nb\" c", W("a\\\nb", 1), W("c", 2), END(2));
}

static void
test_errors(void **state)
{
    (void)state;
    CHECK("\"a\"b", W("a", 1), ERR("unexpected \"b\"", 1),
          ERR("unexpected \"b\"", 1));
    CHECK("x\n'a'#c", W("x", 1), W("a", 2), ERR("unexpected \"#\"", 2));
    CHECK("\"a\"\"b\"", W("a", 1), ERR("unexpected \"\"\"", 1));
    CHECK("\"a\"\x01", W("a", 1), ERR("unexpected \"\\x01\"", 1));
    CHECK("x \"abc\n\n", W("x", 1),
          ERR("unexpected end of file, expecting \";\" or \"}\"", 3));
    CHECK("'abc\\'",
          ERR("unexpected end of file, expecting \";\" or \"}\"", 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_and_punctuation),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
