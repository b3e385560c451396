import { readFileSync } from 'node:fs';
import { CvoptError } from '@cvopt/core';

/**
 * One row of a MOTChallenge text file: `frame, id, left, top, width, height, conf, class, visibility`. In ground
 * truth `conf` is the "consider" flag (0 = ignore); in results it is the score. Frames count from 1.
 */
export interface MotRow {
  frame: number;
  id: number;
  box: [number, number, number, number];
  conf: number;
  classId: number;
  visibility: number;
}

/** Parse MOT rows; a bad line is a MOT_FILE_INVALID-style INVALID_ARGUMENT error naming file and line. */
export function parseMot(text: string, file = '<mot>'): MotRow[] {
  const rows: MotRow[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/[,\s]+/).map(Number);
    if (f.length < 6 || f.slice(0, 6).some((v) => !Number.isFinite(v))) {
      throw new CvoptError('INVALID_ARGUMENT', `${file}:${n + 1}: expected "frame,id,left,top,width,height[,conf,class,visibility]", got "${line.slice(0, 80)}"`, {
        where: { file, line: n + 1 },
        hint: 'write MOTChallenge rows: numbers separated by commas, frames from 1',
      });
    }
    const [frame, id, x, y, w, h] = f as [number, number, number, number, number, number];
    if (!Number.isInteger(frame) || frame < 1 || !Number.isInteger(id) || w < 0 || h < 0) {
      throw new CvoptError('INVALID_ARGUMENT', `${file}:${n + 1}: frame must be an integer ≥ 1, id an integer and width/height ≥ 0 (got frame ${frame}, id ${id}, ${w}x${h})`, {
        where: { file, line: n + 1 },
      });
    }
    rows.push({ frame, id, box: [x, y, x + w, y + h], conf: Number.isFinite(f[6]) ? f[6]! : 1, classId: Number.isFinite(f[7]) ? f[7]! : -1, visibility: Number.isFinite(f[8]) ? f[8]! : 1 });
  }
  return rows;
}

export function readMotFile(file: string): MotRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CvoptError('NOT_FOUND', `MOT file ${file} cannot be read`, { where: { file }, hint: 'check the path', cause: e });
  }
  return parseMot(text, file);
}

/** One MOT row as text; boxes rounded to 2 decimals. */
export function formatMotRow(r: MotRow): string {
  const [x1, y1, x2, y2] = r.box;
  const n = (v: number) => String(Math.round(v * 100) / 100);
  return [r.frame, r.id, n(x1), n(y1), n(x2 - x1), n(y2 - y1), n(r.conf), r.classId, n(r.visibility)].join(',');
}
