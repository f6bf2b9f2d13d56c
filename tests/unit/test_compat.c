/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for stream/compat: which load_module paths name a stream
 * module snirelay has built in, and the module name given back.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stream/compat.h"

static void
expect_module(const char *path, bool is_builtin, const char *name)
{
    char out[64];

    assert_int_equal(compat_module_is_builtin(path, out, sizeof(out)),
                     is_builtin);
    assert_string_equal(out, name);
}

static void
test_builtin_modules(void **state)
{
    (void)state;
    expect_module("modules/ngx_stream_module.so", true, "ngx_stream_module");
    expect_module("/usr/lib/nginx/modules/ngx_stream_map_module.so", true,
                  "ngx_stream_map_module");
    expect_module("ngx_stream_ssl_preread_module.so", true,
                  "ngx_stream_ssl_preread_module");
    expect_module("ngx_stream_upstream_hash_module", true,
                  "ngx_stream_upstream_hash_module");
}

static void
test_other_modules(void **state)
{
    (void)state;
    expect_module("modules/ngx_http_image_filter_module.so", false,
                  "ngx_http_image_filter_module");
    expect_module("modules/ngx_stream_js_module.so", false,
                  "ngx_stream_js_module");
    expect_module("modules/ngx_stream_geoip2_module.so", false,
                  "ngx_stream_geoip2_module");
    /* A prefix or an extension of a built-in name is not that module. */
    expect_module("ngx_stream_map_module_x.so", false,
                  "ngx_stream_map_module_x");
    expect_module("ngx_stream_map.so", false, "ngx_stream_map");
    expect_module("dir/", false, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_modules),
        cmocka_unit_test(test_other_modules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
