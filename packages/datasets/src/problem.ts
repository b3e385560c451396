/**
 * One thing wrong with a dataset, located to a file (and line when there is one). Checks collect every problem
 * instead of stopping at the first, so a user fixes a dataset in one pass.
 */
export type Severity = 'error' | 'warning';

/** Stable problem codes; tools and tests match on these, people read `message` and `hint`. */
export type ProblemCode =
  | 'YAML_SYNTAX'
  | 'YAML_FIELD'
  | 'NAMES_MISSING'
  | 'NAMES_INVALID'
  | 'NC_MISMATCH'
  | 'SPLIT_MISSING'
  | 'SPLIT_EMPTY'
  | 'SPLIT_OVERLAP'
  | 'LIST_ENTRY_MISSING'
  | 'LABEL_FIELD_COUNT'
  | 'LABEL_NOT_NUMBER'
  | 'LABEL_CLASS_INVALID'
  | 'LABEL_CLASS_RANGE'
  | 'LABEL_COORD_RANGE'
  | 'LABEL_BOX_OUTSIDE'
  | 'LABEL_BOX_EMPTY'
  | 'LABEL_DUPLICATE'
  | 'LABEL_SEGMENT'
  | 'LABEL_UNREADABLE'
  | 'FILE_UNREADABLE'
  | 'PROBLEMS_LEFT_OUT'
  | 'LABEL_ORPHAN'
  | 'IMAGE_CORRUPT'
  | 'IMAGE_TRUNCATED'
  | 'IMAGE_TOO_SMALL'
  | 'CLASS_DIR_EMPTY'
  | 'CLASS_DIRS_DIFFER'
  | 'FILE_IGNORED'
  | 'PATH_MISSING'
  | 'LAYOUT_UNKNOWN'
  | 'LABELS_NONE'
  | 'CLASS_UNUSED';

export interface Problem {
  severity: Severity;
  code: ProblemCode;
  /** Absolute path of the file (or directory) the problem is in. */
  file: string;
  /** 1-based line in `file`, when the problem is on one line. */
  line?: number;
  message: string;
  /** How to fix it. */
  hint: string;
}

export function problem(
  severity: Severity,
  code: ProblemCode,
  file: string,
  message: string,
  hint: string,
  line?: number,
): Problem {
  return line === undefined ? { severity, code, file, message, hint } : { severity, code, file, line, message, hint };
}

/** `file:line: message (fix: hint)` — the form editors and terminals turn into links. */
export function formatProblem(p: Problem, relativeTo?: string): string {
  let file = p.file;
  if (relativeTo && file.startsWith(`${relativeTo}/`)) file = file.slice(relativeTo.length + 1);
  const at = p.line !== undefined ? `${file}:${p.line}` : file;
  return `${at}: ${p.severity}: ${p.message} (fix: ${p.hint})`;
}
