import neostandard from 'neostandard'

// The Standard style (no semicolons, single quotes, 2-space indent) for JavaScript and
// TypeScript alike; files listed in .gitignore are skipped.
export default neostandard({ ts: true })
