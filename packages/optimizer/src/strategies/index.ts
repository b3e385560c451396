import { adaptiveStrategy, type AdaptiveOptions } from './adaptive.js';
import { constrainedStrategy, type ConstrainedOptions } from './constrained.js';
import { elitistStrategy, type ElitistOptions } from './elitist.js';
import { nsga2Strategy, type Nsga2Options } from './nsga2.js';
import { tournamentStrategy, type TournamentOptions } from './tournament.js';
import type { Strategy, StrategyName } from './types.js';

export type StrategyOptions = TournamentOptions & ElitistOptions & AdaptiveOptions & ConstrainedOptions & Nsga2Options;

/** The strategy of that name with its documented defaults, overridden by `options`. */
export function createStrategy(name: StrategyName, options: StrategyOptions = {}): Strategy {
  switch (name) {
    case 'tournament':
      return tournamentStrategy(options);
    case 'elitist':
      return elitistStrategy(options);
    case 'adaptive':
      return adaptiveStrategy(options);
    case 'constrained':
      return constrainedStrategy(options);
    case 'nsga2':
      return nsga2Strategy(options);
  }
}
