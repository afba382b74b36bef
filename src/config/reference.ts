import { ZodArray, ZodDefault, ZodEffects, ZodObject, ZodOptional, ZodRecord, type ZodTypeAny } from "zod";
import { toJsonSchema } from "./json-schema.js";
import { configObjectSchema } from "./schema.js";

/** One key of the config file, as the reference lists it. */
export interface ReferenceRow {
  key: string;
  form: string;
  default: string;
  description: string;
}

/** Every key of `portcullis.yaml`, depth first, from the schema itself. */
export function referenceRows(): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const walk = (schema: ZodTypeAny, key: string) => {
    const json = toJsonSchema(schema);
    const description = findDescription(schema);
    const object = objectOf(schema);
    const items = arrayItems(schema);
    const entries = recordValues(schema);
    if (!object || description) {
      rows.push({
        key,
        form: entries ? "mapping of NAME to mapping" : formOf(json),
        default: json.default === undefined ? "" : `\`${JSON.stringify(json.default)}\``,
        description: description ?? "",
      });
    }
    if (object)
      for (const [name, inner] of Object.entries(object.shape as Record<string, ZodTypeAny>))
        walk(inner, `${key}.${name}`);
    else if (items)
      for (const [name, inner] of Object.entries(items.shape as Record<string, ZodTypeAny>))
        walk(inner, `${key}[].${name}`);
    else if (entries)
      for (const [name, inner] of Object.entries(entries.shape as Record<string, ZodTypeAny>))
        walk(inner, `${key}.NAME.${name}`);
  };
  for (const [name, inner] of Object.entries(configObjectSchema.shape as Record<string, ZodTypeAny>)) walk(inner, name);
  return rows;
}

/** The README's config reference: a markdown table, between markers a test compares with this output. */
export function referenceMarkdown(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const lines = ["| key | form | default | what it is |", "| --- | --- | --- | --- |"];
  for (const row of referenceRows())
    lines.push(`| \`${row.key}\` | ${cell(row.form)} | ${cell(row.default)} | ${cell(row.description)} |`);
  return `${lines.join("\n")}\n`;
}

export const referenceMarkers = ["<!-- config-reference:start -->", "<!-- config-reference:end -->"] as const;

function unwrap(schema: ZodTypeAny): ZodTypeAny {
  let current = schema;
  for (;;) {
    if (current instanceof ZodDefault) current = current.removeDefault() as ZodTypeAny;
    else if (current instanceof ZodOptional) current = current.unwrap() as ZodTypeAny;
    else if (current instanceof ZodEffects) current = current.innerType() as ZodTypeAny;
    else return current;
  }
}

function objectOf(schema: ZodTypeAny): ZodObject<never> | undefined {
  const inner = unwrap(schema);
  return inner instanceof ZodObject ? (inner as ZodObject<never>) : undefined;
}

function arrayItems(schema: ZodTypeAny): ZodObject<never> | undefined {
  const inner = unwrap(schema);
  return inner instanceof ZodArray ? objectOf(inner.element as ZodTypeAny) : undefined;
}

/** The object every entry of a record (`upstreams: {NAME: {...}}`) is, when it is one. */
function recordValues(schema: ZodTypeAny): ZodObject<never> | undefined {
  const inner = unwrap(schema);
  return inner instanceof ZodRecord ? objectOf(inner.valueSchema as ZodTypeAny) : undefined;
}

function findDescription(schema: ZodTypeAny): string | undefined {
  let current: ZodTypeAny | undefined = schema;
  while (current) {
    if (current.description) return current.description;
    const next = unwrap(current);
    current = next === current ? undefined : next;
  }
  return undefined;
}

function formOf(json: Record<string, unknown>): string {
  if (Array.isArray(json.enum)) return (json.enum as string[]).join(" | ");
  if (json.type === "array") return `list of ${formOf(json.items as Record<string, unknown>)}`;
  if (json.type === "object") return json.properties ? "mapping" : "mapping of lists";
  const bounds = [json.minimum, json.maximum].every((b) => b !== undefined) ? ` ${json.minimum}–${json.maximum}` : "";
  return `${String(json.type)}${bounds}`;
}
