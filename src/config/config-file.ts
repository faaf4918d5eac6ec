import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type ParsedNode } from 'yaml'
import { ConfigError } from '../errors.js'
import { configError, expectString, type Raw } from './options.js'
import { KEYS, type Key } from './option-table.js'
import type { RawValues } from './sources.js'
import { expandHome } from './cache-dirs.js'

/**
 * Parses the YAML config file's text. `label` names the file in messages (the path as the
 * user gave it). Messages carry the yaml library's reason and line but never its excerpt
 * of the source, which could show the API key.
 */
export function parseConfigText (text: string, label: string): RawValues {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const lineOf = (offset: number): number => lineCounter.linePos(offset).line
  const syntax = doc.errors[0]
  if (syntax !== undefined) {
    throw configError({ where: label, line: lineOf(syntax.pos[0]) }, `invalid YAML: ${yamlReason(syntax.code, syntax.message)}`)
  }
  if (doc.contents === null) return {} // empty file, or only comments
  const contents = doc.contents
  if (!isMap<ParsedNode, ParsedNode | null>(contents)) {
    const got = isSeq(contents) ? 'a list' : 'a single value'
    throw configError({ where: label, line: lineOf(contents.range[0]) }, `must be a mapping of keys to values, got ${got}`)
  }
  const keys = contents.items.map(pair => {
    const line = lineOf(pair.key.range[0])
    if (!isScalar(pair.key)) throw configError({ where: label, line }, 'keys must be plain names such as "port"')
    const name = String(pair.key.value)
    if (!(KEYS as readonly string[]).includes(name)) {
      throw configError({ where: label, line }, `unknown key ${JSON.stringify(name)}`)
    }
    return { key: name as Key, line }
  })
  let data: Record<string, unknown>
  try {
    data = doc.toJS() as Record<string, unknown>
  } catch (err) {
    // An alias whose anchor is missing, or an alias bomb beyond yaml's limit. No `cause`:
    // its message names the alias, which may be an unquoted API key starting with `*`.
    throw new ConfigError(`${label}: invalid YAML: ${yamlReason(undefined, (err as Error).message)}`)
  }
  const values: RawValues = {}
  for (const { key, line } of keys) {
    const value = data[key]
    // `key:` with nothing after it reads as null: the same as leaving the key out.
    if (value === null || value === undefined) continue
    values[key] = { value, origin: { where: `${label}: ${key}`, line } }
  }
  return values
}

// The yaml library's reason without what it quotes from the source, which may be part of
// the API key: quotes come after a colon ("…in YAML stream: \"]\"", "Unresolved alias
// (…): name"), except in escape errors ("Invalid escape sequence \\q").
function yamlReason (code: string | undefined, message: string): string {
  if (code === 'BAD_DQ_ESCAPE') return 'invalid escape sequence in a double-quoted string'
  return message.replace(/:.*$/s, '')
}

/**
 * Reads and parses the file named by `--config` or IMAGEGATE_CONFIG. The file was asked
 * for explicitly, so a missing one is an error rather than an empty config.
 */
export function loadConfigFile (raw: Raw, cwd: string, homedir: string): RawValues {
  const given = expectString(raw)
  const path = resolve(cwd, expandHome(given, homedir))
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const shown = JSON.stringify(given)
    if (code === 'ENOENT' || code === 'ENOTDIR') throw configError(raw.origin, `file ${shown} does not exist`)
    if (code === 'EISDIR') throw configError(raw.origin, `${shown} is a directory, not a YAML file`)
    throw configError(raw.origin, `cannot read ${shown}: ${String(code)}`)
  }
  return parseConfigText(text, given)
}
