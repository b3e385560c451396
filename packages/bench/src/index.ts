export { selectEngine, SELECTION_RULE } from './select.js';
