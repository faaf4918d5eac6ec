/**
 * The one declaration of every option. A row, under the option's key, says what its value
 * is made of (its kind: the rule that checks it, whichever source gave it), its default
 * and its line of --help. The rest is derived from the key: the flag `--store-max-bytes`,
 * the environment variable `IMAGEGATE_STORE_MAX_BYTES` (sources.ts), the YAML key
 * `store-max-bytes` and the property `storeMaxBytes` of Options. sources.ts,
 * config-file.ts, help.ts, resolve.ts and object.ts go through the table instead of naming
 * options; README's configuration table and config.example.yaml are checked against it
 * by test/config/option-table.test.ts.
 */
import { resolve as resolvePath } from 'node:path'
import { DEFAULT_HERMES_HOME, discoverCacheDirs, expandHome, HERMES_CACHE_KINDS, resolveCacheDirs } from './cache-dirs.js'
import {
  COMPACT_IMAGES, DEFAULT_COMPACT_IMAGES, DEFAULT_COMPACT_MAX_BYTES, DEFAULT_COMPACT_MAX_WIDTH, DEFAULT_COMPACT_QUALITY,
  DEFAULT_DATA_IMAGE_MAX_BYTES, DEFAULT_HOST, DEFAULT_INLINE_MAX_BYTES, DEFAULT_KEEPALIVE, DEFAULT_LOG_LEVEL, DEFAULT_MODE,
  DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_STATE_DIR, DEFAULT_STORE_MAX_BYTES, DEFAULT_UPSTREAM, expectString, invalid,
  LOG_LEVELS, MAX_PORT, MAX_QUALITY, MAX_WIDTH, MODES, parseApiKey, parseBoolean, parseBytes, parseChoice, parseHost,
  parseIntegerIn, parsePublicUrl, parseSeconds, parseSigningKey, parseUpstream, type Options, type Raw
} from './options.js'

/** Where relative folders and `~` are resolved from. */
interface Place {
  cwd: string
  homedir: string
}

/**
 * How flags and environment variables carry a value. `text`: one value, the last flag
 * given wins. `list`: a repeatable flag, and a variable holding several values joined
 * with the platform's path delimiter, like PATH. `switch`: a flag without a value that
 * means true; variables and YAML say true or false.
 */
type Shape = 'text' | 'list' | 'switch'

/** What an option's value is made of. */
export interface Kind<T> {
  /**
   * Checks a raw value from any source and returns the option's value; throws a one-line
   * ConfigError naming where the value came from and the rule it breaks.
   */
  parse: (raw: Raw, place: Place) => T
  shape: Shape
  /** Stands for the value after the flag in --help and README (`--port N`); empty for a switch. */
  arg: string
}

const text = <T>(arg: string, parse: (raw: Raw, place: Place) => T): Kind<T> => ({ parse, shape: 'text', arg })

/** A whole number from `min` to `max`. */
const integer = (min: number, max: number, arg = 'N'): Kind<number> => text(arg, raw => parseIntegerIn(raw, min, max))

/** One of a fixed list of words, in any case. */
const oneOf = <T extends string>(choices: readonly T[], arg: string): Kind<T> => text(arg, raw => parseChoice(raw, choices))

const bytes = text('N', parseBytes)
const seconds = text('SEC', parseSeconds)

/** Off unless asked for: `--allow-svg`, `IMAGEGATE_ALLOW_SVG=true`, `allow-svg: true`. */
const toggle: Kind<boolean> = { parse: parseBoolean, shape: 'switch', arg: '' }

/**
 * A folder imagegate creates itself when missing: `~` expanded, relative to cwd. Empty
 * flags and variables never get here, but YAML can say `state-dir: ""`, which would
 * otherwise resolve to cwd itself.
 */
const folder = text('DIR', (raw, { cwd, homedir }) => {
  const given = expectString(raw)
  if (given === '') throw invalid(raw.origin, 'must be a folder path', '""')
  return resolvePath(cwd, expandHome(given, homedir))
})

/** Folders that must exist already, one or several (see cache-dirs.ts). */
const existingFolders: Kind<string[]> = {
  parse: (raw, { cwd, homedir }) => resolveCacheDirs(raw, cwd, homedir),
  shape: 'list',
  arg: 'DIR'
}

/** Options' properties that are options; hermesHome is worked out from cache-dir. */
export type OptionValues = Omit<Options, 'hermesHome'>
export type OptionField = keyof OptionValues

/** What a default worked out at start may look at. */
export interface DefaultContext extends Place {
  /** Read for HERMES_HOME and XDG_STATE_HOME only. */
  env: Readonly<Record<string, string | undefined>>
  /** Adds a line to the warnings logged at start. */
  warn: (text: string) => void
  /** Another option's value, worked out first when need be. */
  valueOf: <F extends OptionField>(field: F) => Options[F]
}

interface Row {
  kind: Kind<unknown>
  /** The option's doc text: one line of --help, after the flag. */
  about: string
  /** Options' property, when it is not the key in camelCase. */
  field?: string
}

/**
 * A default written as a user would write the value, and checked by the kind's rule
 * like any given value; undefined leaves the option unset.
 */
interface FixedDefault extends Row {
  default: string | number | boolean | undefined
  /** The default in --help when it is not the value itself; `\n` continues it on the next line. */
  shown?: string
}

/** A default worked out at start, from the environment or from other options. */
interface DerivedDefault extends Row {
  derive: (context: DefaultContext) => unknown
  shown: string
}

export type Declaration = FixedDefault | DerivedDefault

/**
 * Every option, in the order --help lists them and resolution checks them (so that with
 * several mistakes, the one reported is predictable).
 */
export const OPTIONS = {
  upstream: {
    kind: text('URL', parseUpstream),
    default: DEFAULT_UPSTREAM,
    about: 'agent backend base URL; /v1 is appended when missing'
  },
  'cache-dir': {
    kind: existingFolders,
    // Plural: it holds every folder given.
    field: 'cacheDirs',
    derive: ({ env, cwd, homedir, warn }) => {
      const found = discoverCacheDirs(env, cwd, homedir)
      if (found.warning !== undefined) warn(found.warning)
      return found.dirs
    },
    shown: `every existing\ncache/{${HERMES_CACHE_KINDS.join(',')}} in\n$HERMES_HOME (${DEFAULT_HERMES_HOME}) and its profiles/*`,
    about: 'folder whose files may be served; repeatable'
  },
  // 0 lets the system choose, which tests rely on.
  port: { kind: integer(0, MAX_PORT), default: DEFAULT_PORT, about: 'port to listen on (0: any free port)' },
  host: { kind: text('ADDR', parseHost), default: DEFAULT_HOST, about: 'address to listen on (0.0.0.0 or :: for all)' },
  'public-url': {
    kind: text('URL', parsePublicUrl),
    default: undefined,
    shown: 'http://<host>:<port>',
    about: 'base URL browsers load images from; a path works'
  },
  'upstream-api-key': { kind: text('KEY', parseApiKey), default: undefined, about: 'bearer token sent upstream instead of the client\'s' },
  'log-level': { kind: oneOf(LOG_LEVELS, 'LEVEL'), default: DEFAULT_LOG_LEVEL, about: LOG_LEVELS.join('|') },
  'signing-key': {
    kind: text('KEY', parseSigningKey),
    default: undefined,
    shown: 'generated, kept in\nstate-dir',
    about: 'secret for signing image links (32+ characters)'
  },
  'no-signing': { kind: toggle, default: false, shown: 'signed', about: 'serve plain image names without a signature' },
  'state-dir': {
    kind: folder,
    // XDG's state folder: links stored in chat history must survive restarts. A relative
    // XDG_STATE_HOME is ignored, as the XDG spec says.
    derive: ({ env, cwd, homedir }) => env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME.startsWith('/')
      ? resolvePath(env.XDG_STATE_HOME, 'imagegate')
      : resolvePath(cwd, expandHome(DEFAULT_STATE_DIR, homedir)),
    shown: `$XDG_STATE_HOME/imagegate\nor ${DEFAULT_STATE_DIR}`,
    about: 'folder for the signing key and stored images'
  },
  'allow-svg': { kind: toggle, default: false, about: 'also deliver SVG files (served sandboxed)' },
  'shutdown-grace': { kind: seconds, default: DEFAULT_SHUTDOWN_GRACE, about: 'time running requests get to finish on SIGTERM' },
  keepalive: { kind: seconds, default: DEFAULT_KEEPALIVE, about: 'SSE comment after this much upstream silence; 0: off' },
  mode: { kind: oneOf(MODES, 'MODE'), default: DEFAULT_MODE, about: `${MODES.join('|')}: link to files, or inline them` },
  'inline-max-bytes': { kind: bytes, default: DEFAULT_INLINE_MAX_BYTES, about: 'largest file inlined in data-uri mode' },
  'store-dir': {
    kind: folder,
    derive: ({ valueOf }) => resolvePath(valueOf('stateDir'), 'store'),
    shown: '<state-dir>/store',
    about: 'where decoded upstream data: images are kept'
  },
  'data-image-max-bytes': { kind: bytes, default: DEFAULT_DATA_IMAGE_MAX_BYTES, about: 'largest upstream data: image that is stored' },
  'store-max-bytes': {
    kind: bytes,
    default: DEFAULT_STORE_MAX_BYTES,
    shown: `${DEFAULT_STORE_MAX_BYTES} (512 MiB)`,
    about: 'bound on store-dir; least recently used out'
  },
  'compact-images': {
    kind: oneOf(COMPACT_IMAGES, 'FORMAT'),
    default: DEFAULT_COMPACT_IMAGES,
    about: `${COMPACT_IMAGES.join('|')}: smaller images for browsers`
  },
  'compact-quality': { kind: integer(1, MAX_QUALITY), default: DEFAULT_COMPACT_QUALITY, about: 'encoder quality of compact images, 1-100' },
  // 0 means no limit.
  'compact-max-width': {
    kind: integer(0, MAX_WIDTH, 'PX'),
    default: DEFAULT_COMPACT_MAX_WIDTH,
    about: 'compact images no wider than this; 0: no limit'
  },
  'compact-max-bytes': {
    kind: bytes,
    default: DEFAULT_COMPACT_MAX_BYTES,
    shown: `${DEFAULT_COMPACT_MAX_BYTES} (256 MiB)`,
    about: 'bound on <state-dir>/compact'
  },
  'drop-named-events': { kind: toggle, default: false, about: 'drop named SSE events from chat streams' }
} as const satisfies Record<string, Declaration>

/** An option's name: its flag without `--`, its YAML key. */
export type Key = keyof typeof OPTIONS

/** Every key, in the table's order. */
export const KEYS = Object.keys(OPTIONS) as readonly Key[]

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S
type RowOf<K extends Key> = typeof OPTIONS[K]
type FieldOf<K extends Key> = RowOf<K> extends { field: infer F extends string } ? F : CamelCase<K>
type ValueOf<K extends Key> =
  | (RowOf<K>['kind'] extends Kind<infer T> ? T : never)
  | (RowOf<K> extends { default: undefined } ? undefined : never)
  | (RowOf<K> extends { derive: (context: DefaultContext) => infer T } ? T : never)
type Declared = { -readonly [K in Key as FieldOf<K>]: ValueOf<K> }
/** true when A and B are the same type. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Named = keyof Declared | OptionField
/** Properties that Options and the table do not agree on: missing on one side, or of another type. */
type Mismatched = {
  [F in Named]: F extends keyof Declared & OptionField ? (Same<Declared[F], OptionValues[F]> extends true ? never : F) : F
}[Named]
// The table declares exactly Options' properties, each with the type Options gives it: a
// row added or dropped without Options following, or a kind or default of another type,
// fails to compile here, naming the property.
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- a compile-time check: only its type is read
const tableMatchesOptions: [Mismatched] extends [never] ? true : { mismatched: Mismatched } = true

/** Options' property for a key: the key in camelCase, unless the row names another. */
export function fieldOf (key: Key): OptionField {
  const row: Declaration = OPTIONS[key]
  return (row.field ?? key.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase())) as OptionField
}

const KEY_OF_FIELD = new Map<string, Key>(KEYS.map(key => [fieldOf(key), key]))

/** The key of an Options property name (`storeMaxBytes` → `store-max-bytes`); undefined for any other name. */
export function keyOf (field: string): Key | undefined {
  return KEY_OF_FIELD.get(field)
}

/** The raw value the sources give for a key, the first that has one winning. */
export type PickRaw = (key: Key) => Raw | undefined

/**
 * Every option's value: the raw value `pick` gives, checked by the option's kind, or else
 * its default. A written default goes through the same rule: a default the rule refuses
 * fails every start, and each start gets a value of its own (a new URL object). Options
 * are checked in the table's order; one whose default needs another's value gets it.
 */
export function resolveValues (pick: PickRaw, context: Omit<DefaultContext, 'valueOf'>): OptionValues {
  const values = new Map<Key, unknown>()
  const valueOf = (key: Key): unknown => {
    if (!values.has(key)) values.set(key, optionValue(key, pick(key), defaults))
    return values.get(key)
  }
  const defaults: DefaultContext = {
    ...context,
    valueOf: <F extends OptionField>(field: F) => valueOf(KEY_OF_FIELD.get(field) as Key) as Options[F]
  }
  // The check against Options above is what makes this cast sound.
  return Object.fromEntries(KEYS.map(key => [fieldOf(key), valueOf(key)])) as unknown as OptionValues
}

function optionValue (key: Key, raw: Raw | undefined, context: DefaultContext): unknown {
  const row: Declaration = OPTIONS[key]
  if (raw !== undefined) return row.kind.parse(raw, context)
  if ('derive' in row) return row.derive(context)
  return row.default === undefined ? undefined : row.kind.parse({ value: row.default, origin: { where: `default ${key}` } }, context)
}
