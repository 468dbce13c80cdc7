/* json_schema.h — a JSON Schema (draft 2020-12 subset) validator, for the report schema test and
 * anything that wants to check a report before trusting it.
 * Supported keywords: type (string or array), required, properties, additionalProperties (bool or
 * schema), items, enum, const, minimum, maximum, minItems, maxItems, minLength, anyOf, $ref to
 * "#/$defs/NAME". Unknown keywords are ignored (as the spec says for annotations). */
#ifndef HS_AN_JSON_SCHEMA_H
#define HS_AN_JSON_SCHEMA_H
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* True when doc is valid under schema (root = the whole schema document, for $ref). On failure
 * err receives "PATH: reason" of the first violation. */
bool an_schema_validate(const cJSON *root, const cJSON *schema, const cJSON *doc, char *err, size_t n);
#endif
