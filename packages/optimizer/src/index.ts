export { SearchSpace, genomeKey, type ParamSpec, type Genome, type ParamValue, type ChoiceValue } from './space.js';
export { gaussian, blxAlpha, gaussianMutation, sbx, sbxLine, polynomialMutation, tournament } from './operators.js';
export {
  type Evaluation,
  totalViolation,
  isFeasible,
  scalar,
  debCompare,
  objectiveCompare,
  dominates,
  constrainedDominates,
  nonDominatedSort,
  crowdingDistance,
  hypervolume2d,
  choosePoint,
} from './ranking.js';
export { Study, type StudyConfig, type StudyState, type Trial } from './study.js';
export { createStrategy, type StrategyOptions } from './strategies/index.js';
export { STRATEGY_NAMES, type StrategyName, type Strategy, type Member, type StrategyState } from './strategies/types.js';
export { nsga2Survival } from './strategies/nsga2.js';
export { epsilonCompare } from './strategies/constrained.js';
export { deploymentFitness, DEFAULT_FITNESS, type FitnessConfig, type FitnessTerms } from './fitness.js';
export { HYP_SPACE, tuneSpace, type TuneSpace } from './tune-space.js';
export { sphere, rastrigin, constrainedSphere, g06, zdt1, zdt2, type TestProblem } from './problems.js';
