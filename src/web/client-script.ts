/**
 * The page's only script (/static/page.js): when the daemon says something changed (server-sent
 * events), it fetches the accounts again and swaps in the cards that changed, leaving alone a card
 * whose form the user is filling in. Without it the page still works; it just needs a reload.
 */
export const PAGE_JS = `'use strict';
(() => {
  const list = document.getElementById('accounts');
  if (!list || !window.EventSource) return;
  const typing = (card) =>
    [...card.querySelectorAll('textarea, input[type=password]')].some((field) => field.value !== '');
  let running = false;
  let again = false;
  const refresh = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      const response = await fetch('/accounts', { headers: { accept: 'text/html' } });
      if (response.status === 401) { location.reload(); return; }
      if (!response.ok) return;
      const fresh = document.createElement('template');
      fresh.innerHTML = await response.text();
      const shown = new Map([...list.querySelectorAll('section.account')].map((card) => [card.id, card]));
      const cards = [...fresh.content.querySelectorAll('section.account')];
      const sameAccounts = cards.length === shown.size && cards.every((card) => shown.has(card.id));
      // The message above the cards told the outcome of the last form: stale once a card changes.
      const replaced = () => document.querySelectorAll('.flash').forEach((flash) => flash.remove());
      if (!sameAccounts) {
        if (![...shown.values()].some(typing)) { list.replaceChildren(fresh.content); replaced(); }
        return;
      }
      for (const card of cards) {
        const old = shown.get(card.id);
        if (old.dataset.version === card.dataset.version) continue;
        if (typing(old) && old.dataset.state === card.dataset.state) continue;
        old.replaceWith(card);
        replaced();
      }
    } catch {
      // The daemon restarted or the network dropped: the event stream reconnects by itself.
    } finally {
      running = false;
      if (again) { again = false; void refresh(); }
    }
  };
  new EventSource('/events').addEventListener('change', () => void refresh());
})();
`;
