/** A detection in original-image pixels, corners form. */
export interface Detection {
  box: [number, number, number, number];
  score: number;
  classId: number;
}

/** A classification answer. */
export interface ClassScore {
  classId: number;
  score: number;
}
