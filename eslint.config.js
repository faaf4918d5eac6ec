import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'

// The Standard style (no semicolons, single quotes, 2-space indent) for JavaScript and
// TypeScript alike; what .gitignore lists (dist/, the build; .tap/, coverage) is skipped.
export default neostandard({ ts: true, ignores: resolveIgnoresFromGitignore() })
