export { selectEngine, SELECTION_RULE } from './select.js';
export { renderChart, renderMarkdown, renderTable } from './render.js';
