/**
 * Readings from /proc about processes the benchmark started: resident memory, CPU time
 * and the port a process listens on (imagegate at `--log-level warn` does not print it).
 */
import fs from 'node:fs'

const CLOCK_TICKS = 100 // USER_HZ on Linux; /proc/<pid>/stat counts in these

/** The process and its children (nginx: master and workers). */
function processTree (pid) {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    let children = ''
    try {
      children = fs.readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8')
    } catch {}
    for (const child of children.trim().split(/\s+/)) if (child !== '') pids.push(Number(child))
  }
  return pids
}

/** VmRSS in bytes, summed over the process tree. */
export function rssBytes (pid) {
  let total = 0
  for (const p of processTree(pid)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))
      if (match !== null) total += Number(match[1]) * 1024
    } catch {}
  }
  return total
}

/** User plus system CPU seconds, summed over the process tree. */
export function cpuSeconds (pid) {
  let ticks = 0
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8')
      // Fields after the command name, which may itself hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks / CLOCK_TICKS
}

function socketInodes (pid) {
  const inodes = new Set()
  for (const p of processTree(pid)) {
    let fds = []
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`)
    } catch {}
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${p}/fd/${fd}`))
        if (match !== null) inodes.add(match[1])
      } catch {}
    }
  }
  return inodes
}

const LISTEN = '0A'

/** Rows of the kernel's TCP tables (IPv4 and IPv6), split into columns. */
function tcpRows () {
  const rows = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = []
    try {
      lines = fs.readFileSync(table, 'utf8').trim().split('\n').slice(1)
    } catch {}
    for (const line of lines) rows.push(line.trim().split(/\s+/))
  }
  return rows
}

const portOf = (address) => parseInt(address.split(':').at(-1), 16)

/** Every TCP socket the process tree holds: local and remote port, state (hex). */
export function tcpSockets (pid) {
  const inodes = socketInodes(pid)
  return tcpRows().filter((cols) => inodes.has(cols[9])).map((cols) => ({ local: portOf(cols[1]), remote: portOf(cols[2]), state: cols[3] }))
}

/** The first TCP port the process tree listens on, or undefined. */
export function listeningPort (pid) {
  return tcpSockets(pid).find((socket) => socket.state === LISTEN)?.local
}

export function machine () {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? 'unknown'
  return { model }
}

/** CPU seconds all processes on the machine spent busy (not idle, not waiting on I/O). */
function machineBusySeconds () {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0)
  return (total - fields[3] - fields[4]) / CLOCK_TICKS
}

export const loadAverage = () => Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0])

/**
 * Measures how busy the machine was while a scenario ran, and how much of that was the
 * benchmark's own processes (`ours()`: their CPU seconds so far): the rest is other
 * work sharing the cores, the noise floor.
 */
export function createLoadMeter (ours) {
  let start
  return {
    start () {
      start = { at: process.hrtime.bigint(), busy: machineBusySeconds(), ours: ours() }
    },
    stop () {
      const seconds = Number(process.hrtime.bigint() - start.at) / 1e9
      const busy = (machineBusySeconds() - start.busy) / seconds
      const own = (ours() - start.ours) / seconds
      return { seconds, busy, ours: own, others: Math.max(0, busy - own), load: loadAverage() }
    }
  }
}
