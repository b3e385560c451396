import { describe, expect, it } from 'vitest';
import { annotate, drawBox, drawText, labelText, paletteColour } from './draw.js';
import { GLYPH_HEIGHT, glyph, textWidth } from './font.js';
import type { RgbImage } from './image.js';

const blank = (w: number, h: number): RgbImage => ({ width: w, height: h, data: new Uint8Array(w * h * 3) });
const at = (img: RgbImage, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];

describe('bitmap font and drawing', () => {
  it('draws a glyph pixel for pixel, scaled', () => {
    const img = blank(20, 20);
    drawText(img, 1, 1, 'T', [255, 0, 0], 2);
    // T: the top row is full, the stem is the middle column.
    for (let x = 1; x < 11; x++) expect(at(img, x, 1)).toEqual([255, 0, 0]);
    expect(at(img, 5, 1 + 2 * (GLYPH_HEIGHT - 1))).toEqual([255, 0, 0]);
    expect(at(img, 1, 1 + 2 * (GLYPH_HEIGHT - 1))).toEqual([0, 0, 0]);
    expect(glyph('t')).toBe(glyph('T'));
    expect(glyph('é')).toBe(glyph('?'));
    expect(textWidth('AB', 1)).toBe(11);
  });

  it('outlines a box inside its corners and clips at the edges', () => {
    const img = blank(10, 10);
    drawBox(img, [2, 2, 8, 8], [0, 255, 0], 1);
    expect(at(img, 2, 2)).toEqual([0, 255, 0]);
    expect(at(img, 7, 5)).toEqual([0, 255, 0]);
    expect(at(img, 8, 5)).toEqual([0, 0, 0]);
    expect(at(img, 5, 5)).toEqual([0, 0, 0]);
    drawBox(img, [-5, -5, 20, 20], [0, 0, 255], 1); // no throw outside the frame
  });

  it('labels with track id, name and confidence as asked, coloured by track', () => {
    const d = { box: [10, 20, 40, 50] as [number, number, number, number], score: 0.876, classId: 1, trackId: 7 };
    expect(labelText(d, { names: ['a', 'car'] })).toBe('#7 car 0.88');
    expect(labelText(d, { names: ['a', 'car'], showConf: false })).toBe('#7 car');
    const img = blank(64, 64);
    annotate(img, [d], { names: ['a', 'car'], lineWidth: 1 });
    expect(at(img, 10, 35)).toEqual([...paletteColour(7)]);
    expect(paletteColour(1)).not.toEqual(paletteColour(2));
  });
});
