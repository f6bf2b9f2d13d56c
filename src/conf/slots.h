/* SPDX-License-Identifier: MIT */
/*
 * Directive dispatch and the generic setters. Their declarations, with the
 * table types they work on, are in conf/conf.h, the header every module
 * with directives includes; this header exists so that slots.c has one of
 * its own name.
 */
#ifndef SNIRELAY_CONF_SLOTS_H
#define SNIRELAY_CONF_SLOTS_H

#include "conf/conf.h"

#endif
