/**
 * A folder of files imagegate writes itself, bounded by their total size: past the
 * bound the least recently used files (written or used longest ago) are removed. The
 * store of inline images and the folder of compact renderings are both one.
 *
 * Removing only unlinks the name, so a response already reading a file finishes it
 * (POSIX keeps an open file's data until the last descriptor closes). Files are written
 * under a temporary name and renamed, so a reader never sees half a file. The folder is
 * measured again at every start, so the bound holds across restarts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { ensureWritableFolder } from './writable-folder.js'

export interface BoundedFolder {
  /** The folder, absolute. */
  readonly dir: string
  /** Bytes of the files it holds. */
  readonly bytes: number
  /**
   * The path of a file it holds, marked used now; undefined when it holds none by that
   * name. A file removed by hand is forgotten here (and written again by the caller).
   */
  get: (name: string) => string | undefined
  /**
   * Writes a file as the most recently used, replacing one of the same name, then
   * removes the least recently used past the bound. Its path, or undefined when the
   * write failed or the file alone is larger than the bound (nothing is written then).
   */
  put: (name: string, bytes: Uint8Array) => string | undefined
  /** Marks a file used now; a name it does not hold is ignored. */
  touch: (name: string) => void
}

export interface BoundedFolderOptions {
  /** Created (mode 0700) when missing. */
  dir: string
  /** Bound on the files together, in bytes. */
  maxTotalBytes: number
  /**
   * The names of the folder's own files. Anything else found in it (notes, temporary
   * files of a crash, folders) is not counted or removed. Without the `g` flag.
   */
  names: RegExp
  /** Permissions of the written files. */
  fileMode: number
  /** Told the name of each file removed to stay under the bound, at start too. */
  onEvict?: ((name: string) => void) | undefined
}

export function createBoundedFolder (options: BoundedFolderOptions): BoundedFolder {
  const dir = path.resolve(options.dir)
  const { maxTotalBytes, names, fileMode, onEvict } = options
  ensureWritableFolder(dir)
  // Sizes by name; a Map iterates in insertion order, so re-inserting on use keeps the
  // least recently used first.
  const sizes = new Map<string, number>()
  let total = 0

  function add (name: string, size: number): void {
    sizes.set(name, size)
    total += size
  }

  function forget (name: string): void {
    const size = sizes.get(name)
    if (size === undefined) return
    sizes.delete(name)
    total -= size
  }

  function touch (name: string): void {
    const size = sizes.get(name)
    if (size === undefined) return
    sizes.delete(name)
    sizes.set(name, size)
  }

  /**
   * Removes the least recently used files until the bound holds. A file just written is
   * the most recent and never larger than the bound, so it is never among them.
   */
  function evict (): void {
    for (const [name] of sizes) {
      if (total <= maxTotalBytes) return
      forget(name)
      // Already gone (removed by hand) is as good as removed.
      try { fs.unlinkSync(path.join(dir, name)) } catch {}
      onEvict?.(name)
    }
  }

  // Oldest first by modification time, the order they were written in; the name decides
  // between equal times, so a restart always evicts the same file first.
  const found = fs.readdirSync(dir).filter((name) => names.test(name)).flatMap((name) => {
    const stat = fs.lstatSync(path.join(dir, name))
    return stat.isFile() ? [{ name, size: stat.size, mtimeMs: stat.mtimeMs }] : []
  })
  found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name))
  for (const file of found) add(file.name, file.size)
  evict()

  return {
    dir,
    get (name) {
      if (!sizes.has(name)) return undefined
      const file = path.join(dir, name)
      if (!fs.existsSync(file)) {
        forget(name)
        return undefined
      }
      touch(name)
      return file
    },
    put (name, bytes) {
      // A file under another name would be lost to the count at the next start.
      if (!names.test(name)) throw new TypeError(`bounded folder ${JSON.stringify(dir)}: file name ${JSON.stringify(name)} does not match ${String(names)}`)
      if (bytes.length > maxTotalBytes) return undefined
      const file = path.join(dir, name)
      const temporary = `${file}.${process.pid}.tmp`
      try {
        fs.writeFileSync(temporary, bytes, { mode: fileMode })
        fs.renameSync(temporary, file)
      } catch {
        // The temporary file may not exist (the write itself failed); nothing else to undo.
        try { fs.unlinkSync(temporary) } catch {}
        return undefined
      }
      // Counted again if it was known (removed by hand, or replaced).
      forget(name)
      add(name, bytes.length)
      evict()
      return file
    },
    touch,
    get bytes () {
      return total
    }
  }
}
