import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { configError, expectString, invalid, type Origin, type Raw } from './options.js'

/** hermes-agent keeps its state here unless HERMES_HOME says otherwise. */
export const DEFAULT_HERMES_HOME = '~/.hermes'
/**
 * The folders under `<home>/cache/` (and each profile's) where hermes writes media and
 * the documents it shows (hermes' `DOCUMENT_CACHE_DIR` is `cache/documents`).
 */
export const HERMES_CACHE_KINDS = ['images', 'screenshots', 'audio', 'documents'] as const

/**
 * `~` and `~/…` become the home folder. Shells expand them in flags, but not in
 * environment variables or YAML, where users write them just the same.
 */
export function expandHome (path: string, homedir: string): string {
  if (path === '~') return homedir
  if (path.startsWith('~/')) return join(homedir, path.slice(2))
  return path
}

/** The list a source gave: one folder or several (YAML: a string or a list of strings). */
export function parseCacheDirList ({ value, origin }: Raw): string[] {
  const list = Array.isArray(value) ? value as unknown[] : [value]
  if (list.length === 0) throw configError(origin, 'must name at least one folder')
  return list.map(item => {
    const dir = expectString({ value: item, origin })
    if (dir === '') throw invalid(origin, 'must be a folder path', '""')
    return dir
  })
}

/**
 * Folders named explicitly, made absolute (relative to `cwd`) and checked: each must be
 * an existing directory, since a typo here would otherwise only show up as images that
 * never load.
 */
export function resolveCacheDirs (raw: Raw, cwd: string, homedir: string): string[] {
  const dirs: string[] = []
  for (const given of parseCacheDirList(raw)) {
    const dir = resolve(cwd, expandHome(given, homedir))
    checkDirectory(dir, given, raw.origin)
    if (!dirs.includes(dir)) dirs.push(dir)
  }
  return dirs
}

function checkDirectory (dir: string, given: string, origin: Origin): void {
  const shown = dir === given ? JSON.stringify(given) : `${JSON.stringify(given)} (${dir})`
  let isDirectory: boolean
  try {
    isDirectory = statSync(dir).isDirectory()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw configError(origin, `${shown} does not exist`)
    throw configError(origin, `${shown} cannot be read: ${String(code)}`)
  }
  if (!isDirectory) throw configError(origin, `${shown} is not a directory`)
}

/** Folders found when no source names any, and a warning when there are none. */
export interface DiscoveredCacheDirs {
  dirs: string[]
  warning: string | undefined
}

/**
 * Every existing `cache/{images,screenshots,audio,documents}` under HERMES_HOME and under each
 * `HERMES_HOME/profiles/<name>/`. Finding none is only a warning: the proxy still
 * forwards chat, it just has no images to serve.
 */
export function discoverCacheDirs (env: Readonly<Record<string, string | undefined>>, cwd: string, homedir: string): DiscoveredCacheDirs {
  const home = hermesHomeOf(env, cwd, homedir)
  const dirs = findHermesCacheDirs(home)
  const kinds = HERMES_CACHE_KINDS.map(kind => `cache/${kind}`).join(', ')
  const warning = dirs.length > 0
    ? undefined
    : `no cache folder found in ${home} (looked for ${kinds}, also under profiles/*): no images can be served until --cache-dir names one`
  return { dirs, warning }
}

/** The HERMES_HOME that hermes-agent uses, absolute: the variable, else `~/.hermes`. */
export function hermesHomeOf (env: Readonly<Record<string, string | undefined>>, cwd: string, homedir: string): string {
  const given = env.HERMES_HOME === undefined || env.HERMES_HOME === '' ? DEFAULT_HERMES_HOME : env.HERMES_HOME
  return resolve(cwd, expandHome(given, homedir))
}

/** The existing cache folders under one HERMES_HOME, in a stable order. */
export function findHermesCacheDirs (home: string): string[] {
  const roots = [home, ...listProfiles(join(home, 'profiles'))]
  return roots
    .flatMap(root => HERMES_CACHE_KINDS.map(kind => join(root, 'cache', kind)))
    .filter(isDirectory)
}

function listProfiles (dir: string): string[] {
  try {
    // Sorted so that the folder order, and so the logs, are the same on every start.
    return readdirSync(dir).sort().map(name => join(dir, name))
  } catch {
    return []
  }
}

function isDirectory (path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
