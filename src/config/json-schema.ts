import {
  ZodArray,
  ZodBoolean,
  ZodDefault,
  ZodEffects,
  ZodEnum,
  ZodNumber,
  ZodObject,
  ZodOptional,
  ZodRecord,
  ZodString,
  type ZodTypeAny,
} from "zod";

export type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema (draft 2020-12) of a zod schema, for the kinds `configSchema` is built of. Checks only
 * code can make (CIDRs, LDAP filters, rules that can never match) stay with `config verify`.
 */
export function toJsonSchema(schema: ZodTypeAny): JsonSchema {
  const description = schema.description ? { description: schema.description } : {};
  if (schema instanceof ZodDefault) {
    const inner = toJsonSchema(schema.removeDefault() as ZodTypeAny);
    return { ...inner, ...description, default: schema._def.defaultValue() as unknown };
  }
  if (schema instanceof ZodOptional) return { ...toJsonSchema(schema.unwrap() as ZodTypeAny), ...description };
  if (schema instanceof ZodEffects) return { ...toJsonSchema(schema.innerType() as ZodTypeAny), ...description };
  if (schema instanceof ZodObject) {
    const shape = schema.shape as Record<string, ZodTypeAny>;
    const required = Object.entries(shape)
      .filter(([, value]) => !value.isOptional())
      .map(([key]) => key);
    return {
      type: "object",
      ...description,
      properties: Object.fromEntries(Object.entries(shape).map(([key, value]) => [key, toJsonSchema(value)])),
      ...(required.length ? { required } : {}),
      additionalProperties: false,
    };
  }
  if (schema instanceof ZodArray) {
    const min = schema._def.minLength?.value as number | undefined;
    return {
      type: "array",
      ...description,
      items: toJsonSchema(schema.element as ZodTypeAny),
      ...(min ? { minItems: min } : {}),
    };
  }
  if (schema instanceof ZodRecord)
    return { type: "object", ...description, additionalProperties: toJsonSchema(schema.valueSchema as ZodTypeAny) };
  if (schema instanceof ZodEnum) return { type: "string", ...description, enum: [...(schema.options as string[])] };
  if (schema instanceof ZodBoolean) return { type: "boolean", ...description };
  if (schema instanceof ZodNumber) {
    const out: JsonSchema = { type: schema.isInt ? "integer" : "number", ...description };
    if (schema.minValue !== null) out.minimum = schema.minValue;
    if (schema.maxValue !== null) out.maximum = schema.maxValue;
    return out;
  }
  if (schema instanceof ZodString) {
    const out: JsonSchema = { type: "string", ...description };
    if (schema.minLength !== null) out.minLength = schema.minLength;
    for (const check of schema._def.checks) if (check.kind === "regex") out.pattern = check.regex.source;
    return out;
  }
  throw new Error(`toJsonSchema: no JSON Schema for ${schema.constructor.name}`);
}
