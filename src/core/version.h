/* SPDX-License-Identifier: MIT */
/*
 * snirelay's version: `-v`, and $nginx_version (snirelay is not nginx, so
 * that variable gives this number, not an nginx release).
 */
#ifndef SNIRELAY_CORE_VERSION_H
#define SNIRELAY_CORE_VERSION_H

#define SNIRELAY_VERSION "0.1.0"

#endif
