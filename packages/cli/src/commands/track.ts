import type { Command } from 'commander';
import { TRACKER_DEFAULTS } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit } from '../output.js';
import { predictOptions, predictPayload, renderPredict, runPredictLocal } from './predict.js';

/** `cvopt track`: predict with persistent ids (ByteTrack-style), MOT files on request. */
export function register(program: Command): void {
  const d = TRACKER_DEFAULTS;
  const cmd = predictOptions(program.command('track').description('detect and track objects in videos or streams: persistent ids in every output (ByteTrack-style tracker)'), 'runs/track/exp')
    .option('--save-mot', 'write MOTChallenge rows (frame,id,x,y,w,h,score,class,-1) per video under mot/')
    .option('--track-high-thresh <x>', 'score for the first association and for new tracks', String(d.highThresh))
    .option('--track-low-thresh <x>', 'least score for the second association (keeps tracks alive)', String(d.lowThresh))
    .option('--new-track-thresh <x>', 'least score for a detection to start a track', String(d.newTrackThresh))
    .option('--match-iou <x>', 'least IoU between a predicted track box and a detection', String(d.matchIou))
    .option('--track-buffer <n>', 'frames a lost track is kept before it is dropped', String(d.trackBuffer))
    .option('--confirm-hits <n>', 'matched frames before a new track is reported', String(d.confirmHits))
    .option('--class-aware', 'never match a track to a detection of another class')
    .option('--verbose', 'one line per frame on stderr')
    .addHelpText(
      'after',
      `
Examples:
  cvopt track model.onnx --source traffic.mp4 --save --save-mot
  cvopt track model.onnx --source traffic.mp4 --save-txt --save-json --track-buffer 60 --class-aware
  cvopt eval-track --gt seq/gt/gt.txt --pred runs/track/exp/mot/video.txt`,
    );
  action<[string]>(cmd, async (model, opts) => {
    const payload = predictPayload(model, opts, true);
    const t = parseFlags(
      {
        trackHighThresh: flag.number({ min: 0, max: 1 }),
        trackLowThresh: flag.number({ min: 0, max: 1 }),
        newTrackThresh: flag.number({ min: 0, max: 1 }),
        matchIou: flag.number({ min: 0, max: 1 }),
        trackBuffer: flag.int({ min: 0 }),
        confirmHits: flag.int({ min: 1 }),
        classAware: flag.switch().optional(),
      },
      opts,
    );
    // A tracker wants the low-score detections too: the second association lives on them.
    if (cmd.getOptionValueSource('conf') === 'default') payload.conf = t.trackLowThresh;
    payload.tracker = {
      highThresh: t.trackHighThresh,
      lowThresh: t.trackLowThresh,
      newTrackThresh: t.newTrackThresh,
      matchIou: t.matchIou,
      trackBuffer: t.trackBuffer,
      confirmHits: t.confirmHits,
      classAware: t.classAware === true,
    };
    const result = await runPredictLocal(payload, { json: opts.json === true, verbose: opts.verbose === true, ...(opts.signal ? { signal: opts.signal } : {}) });
    emit(opts, result, renderPredict);
  });
}
