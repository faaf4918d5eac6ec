import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * After the streams left at the end of the grace are cut, how long their last bytes
 * (the error event) get to reach the client before every connection is closed.
 */
export const CUT_FLUSH_MS = 500

/** The responses in flight, and the end of keep-alive once shutdown begins. */
export interface Drain {
  /** Follows a response until it closes. */
  track: (res: ServerResponse) => void
  /** Responses not yet closed. */
  readonly size: number
  /** Whether `begin()` was called. */
  readonly draining: boolean
  /**
   * From now on each connection closes as soon as its response is finished, instead of
   * waiting idle for the client's next request (Open WebUI and Node's fetch keep theirs
   * open, and the server could not close before their keep-alive timeout).
   */
  begin: () => void
}

export function createDrain (): Drain {
  const open = new Set<ServerResponse>()
  let draining = false

  // The request's socket, not the response's: Node detaches that one at `finish`, and
  // attaches it late to a response that waits behind a pipelined one. A response that
  // already finished never emits `finish` again; its connection is idle, and
  // `server.close()` closes idle connections itself.
  function closeAfter (res: ServerResponse): void {
    const { socket } = res.req
    res.once('finish', () => { endConnection(socket) })
  }

  return {
    track (res) {
      open.add(res)
      res.once('close', () => { open.delete(res) })
      if (draining) closeAfter(res)
    },
    get size () { return open.size },
    get draining () { return draining },
    begin () {
      draining = true
      for (const res of open) closeAfter(res)
    }
  }
}

/**
 * `end()` sends what is still buffered, then a FIN; the socket is destroyed once that is
 * done, because Node's HTTP server keeps half-open sockets and a client that never
 * closes its side would otherwise hold the process.
 */
function endConnection (socket: Socket): void {
  socket.end(() => { socket.destroy() })
}
