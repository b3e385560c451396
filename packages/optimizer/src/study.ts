import { CvoptError, Rng, type RngState } from '@cvopt/core';
import { choosePoint, debCompare, nonDominatedSort, objectiveCompare, totalViolation, type Evaluation } from './ranking.js';
import { SearchSpace, type Genome, type ParamSpec } from './space.js';
import { createStrategy, type StrategyOptions } from './strategies/index.js';
import { STRATEGY_NAMES, type Member, type Strategy, type StrategyName, type StrategyState } from './strategies/types.js';

/**
 * An ask/tell study (the Optuna / pymoo shape): the caller asks for the current generation's candidates,
 * evaluates them however it likes (in any order, in parallel), and tells each result back. When the whole
 * generation is told the strategy breeds the next one. The problem (what a candidate scores) lives with the
 * caller, the algorithm in the strategy, the operators in operators.ts, termination here (a generation count).
 * Everything a run depends on, the RNG included, is in `toJSON()`, so `Study.fromJSON` resumes it exactly.
 */

export interface Trial {
  id: number;
  generation: number;
  /** Genes in [0, 1], one per parameter. */
  x: number[];
  params: Genome;
  /** True for the default genome seeded into generation 1. */
  isDefault: boolean;
  eval?: Evaluation;
}

export interface StudyConfig {
  space: SearchSpace | readonly ParamSpec[];
  strategy: StrategyName;
  /** Candidates per generation (μ = λ). */
  population: number;
  /** Generations to run, the first included. Default 5. */
  generations?: number;
  /** The seeded generator; the study owns it from here on. */
  rng: Rng;
  strategyOptions?: StrategyOptions;
}

export interface StudyState {
  version: 1;
  strategy: StrategyName;
  strategyOptions: StrategyOptions;
  space: ParamSpec[];
  population: number;
  generations: number;
  generation: number;
  nextId: number;
  rng: RngState;
  strategyState: StrategyState;
  survivors: Trial[];
  pending: Trial[];
  trials: Trial[];
}

export class Study {
  readonly space: SearchSpace;
  readonly strategyName: StrategyName;
  readonly populationSize: number;
  readonly generations: number;
  private readonly strategyOptions: StrategyOptions;
  private readonly strategy: Strategy;
  private rng: Rng;
  private generationNo = 1;
  private nextId = 0;
  private strategyState: StrategyState;
  private survivors: Trial[] = [];
  private pending: Trial[] = [];
  private readonly all: Trial[] = [];

  constructor(cfg: StudyConfig) {
    if (!STRATEGY_NAMES.includes(cfg.strategy)) {
      throw new CvoptError('INVALID_ARGUMENT', `unknown strategy "${String(cfg.strategy)}"`, {
        where: { field: 'strategy' },
        hint: `use one of ${STRATEGY_NAMES.join(', ')}`,
      });
    }
    if (!Number.isInteger(cfg.population) || cfg.population < 2) {
      throw new CvoptError('INVALID_ARGUMENT', `population must be an integer ≥ 2, got ${cfg.population}`, { where: { field: 'population' } });
    }
    const generations = cfg.generations ?? 5;
    if (!Number.isInteger(generations) || generations < 1) {
      throw new CvoptError('INVALID_ARGUMENT', `generations must be an integer ≥ 1, got ${generations}`, { where: { field: 'generations' } });
    }
    this.space = cfg.space instanceof SearchSpace ? cfg.space : new SearchSpace(cfg.space);
    this.strategyName = cfg.strategy;
    this.strategyOptions = { ...(cfg.strategyOptions ?? {}) };
    this.strategy = createStrategy(cfg.strategy, this.strategyOptions);
    this.populationSize = cfg.population;
    this.generations = generations;
    this.rng = cfg.rng;
    this.strategyState = this.strategy.initialState(this.space.dim);
    this.pending = this.firstGeneration();
  }

  /** Generation 1: the default genome (when the space has one) and uniform samples for the rest. */
  private firstGeneration(): Trial[] {
    const out: Trial[] = [];
    if (this.space.hasDefaults) {
      const params = this.space.defaults();
      out.push({ id: this.nextId++, generation: 1, x: this.space.encode(params), params, isDefault: true });
    }
    while (out.length < this.populationSize) out.push(this.trialFor(this.space.sampleGenes(this.rng), 1));
    return out;
  }

  private trialFor(x: number[], generation: number): Trial {
    return { id: this.nextId++, generation, x, params: this.space.decode(x), isDefault: false };
  }

  get generation(): number {
    return this.generationNo;
  }

  get done(): boolean {
    return this.generationNo > this.generations;
  }

  /** The current generation's candidates that still await a result (empty when done). */
  ask(): Trial[] {
    return this.pending.filter((t) => !t.eval).map(cloneTrial);
  }

  /** Every candidate of the current generation, told or not. */
  currentGeneration(): Trial[] {
    return this.pending.map(cloneTrial);
  }

  /** Record a result. When it completes the generation, the next one is bred (or the study ends). */
  tell(id: number, evaluation: Evaluation): void {
    const t = this.pending.find((p) => p.id === id);
    if (!t) throw new CvoptError('CONFLICT', `trial ${id} is not awaiting a result in generation ${this.generationNo}`);
    if (t.eval) throw new CvoptError('CONFLICT', `trial ${id} was already told`);
    const objectives = this.strategy.multiObjective ? evaluation.objectives : evaluation.objectives.slice(0, 1);
    if (!evaluation.failed && objectives.length === 0) {
      throw new CvoptError('INVALID_ARGUMENT', `trial ${id}: a result needs at least one objective (or failed: true)`);
    }
    t.eval = { ...evaluation, objectives: evaluation.failed ? [] : objectives.slice() };
    if (this.pending.every((p) => p.eval)) this.advance();
  }

  private advance(): void {
    const offspring = this.pending;
    this.all.push(...offspring);
    const last = this.generationNo >= this.generations;
    const out = this.strategy.next({
      population: this.survivors.map(asMember),
      offspring: offspring.map(asMember),
      size: this.populationSize,
      rng: this.rng,
      state: this.strategyState,
      generation: this.generationNo,
      generations: this.generations,
    });
    const byId = new Map(this.all.map((t) => [t.id, t]));
    this.survivors = out.population.map((m) => byId.get(m.id)!);
    this.strategyState = out.state;
    this.generationNo++;
    // After the last generation the survivors are still selected (the final population), but nothing is bred.
    this.pending = last ? [] : out.children.map((x) => this.trialFor(x, this.generationNo));
  }

  /**
   * The current population: the survivors that parent the generation being evaluated, or, once the study is done,
   * the final population (what the strategy's survival kept of the last generation). Empty before generation 2.
   */
  population(): Trial[] {
    return this.survivors.map(cloneTrial);
  }

  /** Every evaluated trial, in the order they were asked. */
  trials(): Trial[] {
    return this.all.map(cloneTrial);
  }

  /**
   * The best trial so far: by Deb's rules (feasible first, then the objective) for single-objective studies,
   * by the first objective among feasible trials for NSGA-II. Undefined when nothing has been evaluated.
   */
  best(): Trial | undefined {
    const done = this.all.filter((t) => t.eval);
    if (done.length === 0) return undefined;
    const cmp = this.strategyName === 'constrained' || this.strategy.multiObjective ? debCompare : objectiveCompare;
    return cloneTrial(done.slice().sort((a, b) => cmp(a.eval!, b.eval!) || a.id - b.id)[0]!);
  }

  /** The non-dominated feasible trials of the whole run, sorted by the first objective. */
  paretoFront(): Trial[] {
    const ok = this.all.filter((t) => t.eval && totalViolation(t.eval) === 0);
    if (ok.length === 0) return [];
    const front = nonDominatedSort(ok.map((t) => t.eval!))[0] ?? [];
    return front
      .map((i) => ok[i]!)
      .sort((a, b) => a.eval!.objectives[0]! - b.eval!.objectives[0]! || a.id - b.id)
      .map(cloneTrial);
  }

  /** The knee of the Pareto front, or its best weighted point when `weights` are given. */
  chosenPoint(weights?: readonly number[]): Trial | undefined {
    const front = this.paretoFront();
    if (front.length === 0) return undefined;
    return front[choosePoint(front.map((t) => t.eval!.objectives), weights)];
  }

  /** The strategy's adaptive state (e.g. σ and rate of the adaptive strategy), for logs. */
  strategyInfo(): StrategyState {
    return { ...this.strategyState };
  }

  toJSON(): StudyState {
    return {
      version: 1,
      strategy: this.strategyName,
      strategyOptions: { ...this.strategyOptions },
      space: this.space.toJSON(),
      population: this.populationSize,
      generations: this.generations,
      generation: this.generationNo,
      nextId: this.nextId,
      rng: this.rng.state(),
      strategyState: structuredClone(this.strategyState),
      survivors: this.survivors.map(cloneTrial),
      pending: this.pending.map(cloneTrial),
      trials: this.all.map(cloneTrial),
    };
  }

  static fromJSON(state: StudyState): Study {
    if (state?.version !== 1) throw new CvoptError('INVALID_CONFIG', 'optimiser state has an unknown version', { where: { field: 'version' } });
    const s = new Study({
      space: state.space,
      strategy: state.strategy,
      population: state.population,
      generations: state.generations,
      rng: new Rng(state.rng),
      strategyOptions: state.strategyOptions,
    });
    s.nextId = state.nextId;
    s.generationNo = state.generation;
    s.strategyState = structuredClone(state.strategyState);
    s.all.push(...state.trials.map(cloneTrial));
    const byId = new Map(s.all.map((t) => [t.id, t]));
    s.survivors = state.survivors.map((t) => byId.get(t.id) ?? cloneTrial(t));
    s.pending = state.pending.map(cloneTrial);
    s.rng = new Rng(state.rng);
    return s;
  }
}

function asMember(t: Trial): Member {
  return { id: t.id, x: t.x, eval: t.eval! };
}

function cloneTrial(t: Trial): Trial {
  const c: Trial = { id: t.id, generation: t.generation, x: t.x.slice(), params: { ...t.params }, isDefault: t.isDefault };
  if (t.eval) c.eval = { ...t.eval, objectives: t.eval.objectives.slice(), ...(t.eval.violations ? { violations: t.eval.violations.slice() } : {}) };
  return c;
}
