/**
 * The folders imagegate writes into (the state folder with the signing key, the store of
 * upstream data: images, the compact renderings) are made here, and checked before the
 * first request: a folder this user may not write would otherwise fail later, one image
 * at a time, where nobody reads why.
 */
import fs from 'node:fs'

/**
 * Creates `dir` (mode 0700, parents too) when it is missing, and checks that this process
 * may create files in it. Throws the system error (`EACCES`, `ENOTDIR`, `EROFS`…); the
 * caller knows which option named the folder (see `folderError` in server.ts).
 */
export function ensureWritableFolder (dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  // mkdir succeeds on a folder that exists whoever owns it; access() asks the kernel
  // with this process's ids (root passes, as it does for the writes themselves).
  fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK)
}
