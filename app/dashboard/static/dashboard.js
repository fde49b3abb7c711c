/* Amplify dashboard: plain JavaScript, no dependencies.
 *
 * The API key lives in this tab's sessionStorage only and travels in the Authorization header
 * of same-origin fetches; it is never put in a URL or a cookie. Everything the API returns is
 * inserted as text (textContent / Text nodes), never as HTML. Charts are SVG rendered by the
 * server with every text escaped; they are parsed as XML and imported, never assigned as HTML.
 * Stats, charts and the amplifier list are polled with If-None-Match: an unchanged answer is a
 * bodiless 304 and nothing is redrawn.
 */
(() => {
  "use strict";

  const KEY_STORAGE = "amplify.dashboard.key";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const VIEWS = ["view-sign-in", "view-campaigns", "view-campaign", "view-overview"];
  const NETWORK_NAMES = {
    linkedin: "LinkedIn", x: "X", facebook: "Facebook", email: "Email", whatsapp: "WhatsApp",
    telegram: "Telegram", reddit: "Reddit", xing: "XING", bluesky: "Bluesky", threads: "Threads",
  };
  const SLOW_EVERY = 12; // polls between refreshes of what can change without the stats changing
  const TOP_AMPLIFIERS = 10;
  const COMPARED_CAMPAIGNS = 8; // the latest sent campaigns shown side by side
  const LIST_PAGES = 5; // pages of a list read for the overview (500 items each at most)
  const DAY_MS = 86_400_000;

  const $ = (id) => document.getElementById(id);

  const pollSeconds = (() => {
    const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
    const base = Number(document.body.dataset.pollSeconds) || 5;
    const value = Number.isFinite(asked) && asked > 0 ? asked : base;
    return Math.min(Math.max(value, 1), 300);
  })();
  const timeZone = (() => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (_) {
      return "UTC";
    }
  })();
  const integer = new Intl.NumberFormat();
  const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const monthYear = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone });
  const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

  let apiKey = null;
  try {
    apiKey = window.sessionStorage.getItem(KEY_STORAGE);
  } catch (_) {
    apiKey = null; // storage disabled: the key then lives in memory until the page is left
  }

  // Every navigation or sign-out starts a new generation: answers of an older one are dropped.
  let generation = 0;
  let timer = null;
  let listCursor = null;
  // Conditional-request slots: what each place on the page shows (its URL) and that answer's tag.
  const slots = new Map();
  let current = null; // the open campaign: {id, campaign, stats, polls}

  // --- small helpers ----------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child); // strings become Text nodes
    }
    return node;
  }

  function formatDate(iso) {
    if (!iso) return "—";
    const moment = new Date(iso);
    return Number.isNaN(moment.getTime()) ? "—" : dateTime.format(moment);
  }

  function money(amount, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
    } catch (_) {
      return `${Number(amount).toFixed(2)} ${currency}`;
    }
  }

  function networkName(network) {
    return NETWORK_NAMES[network] || network;
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.dataset.kind = kind || "";
  }

  function setUpdated(polling) {
    const every = polling ? ` · refreshes every ${pollSeconds} s` : "";
    setStatus(`Updated ${clock.format(new Date())}${every}`, "ok");
  }

  function showView(view) {
    for (const id of VIEWS) $(id).hidden = id !== view;
    $("sign-out").hidden = view === "view-sign-in";
    $("nav").hidden = view === "view-sign-in";
    const section = view === "view-overview" ? "overview" : "campaigns";
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function showNotice(box, text) {
    box.textContent = text;
    box.hidden = !text;
  }

  // --- HTTP -------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(url, etag) {
    const headers = { Authorization: `Bearer ${apiKey}`, Accept: "application/json, image/svg+xml" };
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(url, {
        headers,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
        redirect: "error",
      });
    } catch (_) {
      throw new ApiError(0, "The server cannot be reached.");
    }
    if (response.status === 304) return null;
    if (!response.ok) {
      let detail = "";
      try {
        const problem = await response.json();
        if (problem && typeof problem.detail === "string") detail = problem.detail;
      } catch (_) {
        detail = "";
      }
      throw new ApiError(response.status, detail || `The server answered ${response.status}.`);
    }
    return response;
  }

  async function getJson(url) {
    const response = await request(url, null);
    return response.json();
  }

  // The body of `url` for `slot` (read by `read`), or null when the slot already shows it.
  async function fetchChanged(slot, url, read) {
    const held = slots.get(slot);
    const etag = held && held.url === url ? held.etag : null;
    const response = await request(url, etag);
    if (response === null) return null;
    const body = await read(response);
    slots.set(slot, { url, etag: response.headers.get("ETag") });
    return body;
  }

  // --- routing ----------------------------------------------------------------------------------

  function stopPolling() {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
  }

  function route() {
    stopPolling();
    generation += 1;
    slots.clear();
    current = null;
    if (!apiKey) {
      showSignIn("");
      return;
    }
    const match = /^#\/campaigns\/(\d{1,10})$/.exec(window.location.hash);
    if (match) openCampaign(Number(match[1]));
    else if (window.location.hash === "#/overview") openOverview();
    else openCampaigns();
  }

  function poll(gen, tick) {
    const next = async () => {
      if (gen !== generation) return;
      if (!document.hidden) await tick();
      if (gen === generation) timer = window.setTimeout(next, pollSeconds * 1000);
    };
    timer = window.setTimeout(next, pollSeconds * 1000);
  }

  function handleError(error, box) {
    if (error.status === 401) {
      signOut("Your API key is no longer accepted (it may have been revoked). Sign in again.");
      return;
    }
    if (error.status === 0) {
      setStatus(`Connection lost · retrying every ${pollSeconds} s`, "error");
      return;
    }
    if (error.status === 403) {
      showNotice(box, "This key's role may not read this.");
    } else if (error.status === 404) {
      stopPolling();
      generation += 1;
      showNotice(box, "This campaign does not exist, or it belongs to another organization.");
    } else {
      showNotice(box, error.message || "Something went wrong.");
    }
    setStatus("Error", "error");
  }

  // --- sign in and out --------------------------------------------------------------------------

  function showSignIn(message) {
    showView("view-sign-in");
    document.title = "Sign in · Amplify dashboard";
    showNotice($("sign-in-error"), message);
    setStatus("Signed out", "");
    $("api-key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) {
      showNotice($("sign-in-error"), "Paste an API key first.");
      return;
    }
    const button = $("sign-in-button");
    button.disabled = true;
    showNotice($("sign-in-error"), "");
    setStatus("Checking the key…", "busy");
    apiKey = key;
    try {
      await getJson("/api/v1/campaigns?limit=1");
    } catch (error) {
      apiKey = null;
      let message = error.message;
      if (error.status === 401) {
        message = "This key was not accepted: it is unknown or revoked. Check that you pasted the whole key.";
      } else if (error.status === 403) {
        message = "This key may not read campaigns.";
      } else if (error.status === 0) {
        message = "The server cannot be reached. Try again in a moment.";
      }
      showNotice($("sign-in-error"), message);
      setStatus("Signed out", "");
      $("api-key").select();
      return;
    } finally {
      button.disabled = false;
    }
    try {
      window.sessionStorage.setItem(KEY_STORAGE, key);
    } catch (_) {
      // no storage: the key stays in memory for this page only
    }
    $("api-key").value = "";
    route();
  }

  function signOut(message) {
    apiKey = null;
    try {
      window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      // nothing stored
    }
    stopPolling();
    generation += 1;
    slots.clear();
    current = null;
    clearCampaigns();
    clearCampaign();
    clearOverview();
    if (window.location.hash) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    showSignIn(message || "");
  }

  // --- campaign list ----------------------------------------------------------------------------

  function clearCampaigns() {
    $("campaign-rows").replaceChildren();
    $("campaigns-more").hidden = true;
    $("campaigns-empty").hidden = true;
    showNotice($("campaigns-error"), "");
    listCursor = null;
  }

  function openCampaigns() {
    showView("view-campaigns");
    document.title = "Campaigns · Amplify dashboard";
    clearCampaigns();
    loadCampaigns(generation, null);
  }

  async function loadCampaigns(gen, cursor) {
    setStatus("Loading campaigns…", "busy");
    const query = new URLSearchParams({ limit: "50" });
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await getJson(`/api/v1/campaigns?${query}`);
      if (gen !== generation) return;
      const rows = $("campaign-rows");
      for (const campaign of page.items) rows.append(campaignRow(campaign));
      listCursor = page.next_cursor;
      $("campaigns-more").hidden = !listCursor;
      $("campaigns-empty").hidden = rows.children.length > 0;
      showNotice($("campaigns-error"), "");
      setUpdated();
    } catch (error) {
      if (gen === generation) handleError(error, $("campaigns-error"));
    }
  }

  function statusBadge(status) {
    return el("span", { class: `badge badge-${String(status).replace(/[^a-z]/g, "")}` }, status);
  }

  function campaignRow(campaign) {
    const link = el("a", { href: `#/campaigns/${Number(campaign.id)}` }, campaign.name);
    return el(
      "tr",
      { "data-campaign-id": String(Number(campaign.id)) },
      el("td", { class: "name" }, link),
      el("td", {}, statusBadge(campaign.status)),
      el("td", {}, (campaign.networks || []).map(networkName).join(", ")),
      el("td", { class: "nowrap" }, formatDate(campaign.sent_at)),
      el("td", { class: "nowrap" }, formatDate(campaign.created_at)),
    );
  }

  // --- one campaign -----------------------------------------------------------------------------

  function clearCampaign() {
    $("campaign-name").textContent = "";
    $("campaign-status").replaceChildren();
    $("campaign-meta").textContent = "";
    showNotice($("campaign-error"), "");
    for (const kpi of document.querySelectorAll("[data-kpi]")) {
      kpi.querySelector(".value").textContent = "–";
      kpi.querySelector(".sub").textContent = "";
    }
    for (const chart of document.querySelectorAll("[data-chart]")) {
      chart.replaceChildren(el("p", { class: "chart-loading" }, "Loading chart…"));
    }
    for (const id of ["network-rows", "message-rows", "amplifier-rows", "variant-messages"]) {
      $(id).replaceChildren();
    }
    $("amplifiers-empty").hidden = true;
    $("variants-panel").hidden = true;
  }

  function openCampaign(id) {
    showView("view-campaign");
    clearCampaign();
    document.title = "Campaign · Amplify dashboard";
    $("timezone-note").textContent = `Times in your time zone (${timeZone}).`;
    const gen = generation;
    current = { id, campaign: null, stats: null, polls: 0 };
    setStatus("Loading campaign…", "busy");
    refreshCampaign(gen, true).then(() => {
      if (gen === generation) poll(gen, () => refreshCampaign(gen, false));
    });
  }

  function chartUrl(name) {
    const base = `/dashboard/charts/campaigns/${current.id}/${name}.svg`;
    if (name !== "visits") return base;
    const query = new URLSearchParams({
      tz: timeZone,
      interval: $("ts-interval").value,
      metric: $("ts-metric").value,
    });
    return `${base}?${query}`;
  }

  async function refreshCampaign(gen, first) {
    if (gen !== generation || current === null) return;
    const id = current.id;
    current.polls += 1;
    const slow = first || current.polls % SLOW_EVERY === 0;
    try {
      const stats = await fetchChanged("stats", `/api/v1/campaigns/${id}/stats`, (r) => r.json());
      if (gen !== generation) return;
      if (stats !== null || current.campaign === null) {
        // A rename or a status change also changes the stats' tag (their updated_at).
        const campaign = await getJson(`/api/v1/campaigns/${id}`);
        if (gen !== generation) return;
        current.campaign = campaign;
        renderHeader(campaign);
      }
      if (stats !== null) current.stats = stats;
      if (stats !== null || first) renderStats(current.stats, current.campaign);
      const jobs = [];
      if (stats !== null || first) {
        jobs.push(loadChart(gen, "funnel"), loadChart(gen, "networks"), loadChart(gen, "messages"));
        jobs.push(loadVariants(gen, current.campaign));
      }
      // New hours appear in the time series without any click, and names can change.
      if (stats !== null || slow) jobs.push(loadChart(gen, "visits"), loadAmplifiers(gen, id));
      await Promise.all(jobs);
      if (gen !== generation) return;
      showNotice($("campaign-error"), "");
      if (current.stats) $("campaign-meta").textContent = describe(current.campaign, current.stats);
      setUpdated(true);
    } catch (error) {
      if (gen !== generation) return;
      slots.clear(); // redraw everything once the trouble is over
      handleError(error, $("campaign-error"));
    }
  }

  function describe(campaign, stats) {
    const parts = [`Networks: ${(campaign.networks || []).map(networkName).join(", ")}`];
    if (campaign.sent_at) parts.push(`sent ${formatDate(campaign.sent_at)}`);
    else if (campaign.scheduled_at) parts.push(`scheduled for ${formatDate(campaign.scheduled_at)}`);
    parts.push(`last change ${formatDate(stats.updated_at)}`);
    return parts.join(" · ");
  }

  function renderHeader(campaign) {
    $("campaign-name").textContent = campaign.name;
    $("campaign-status").replaceChildren(statusBadge(campaign.status));
    document.title = `${campaign.name} · Amplify dashboard`;
  }

  function setKpi(name, value, sub) {
    const kpi = document.querySelector(`[data-kpi="${name}"]`);
    kpi.querySelector(".value").textContent = value;
    kpi.querySelector(".sub").textContent = sub;
  }

  function renderStats(stats, campaign) {
    const n = (value) => integer.format(value);
    setKpi("sent", n(stats.sent), `of ${n(stats.recipients)} recipients${stats.failed ? ` · ${n(stats.failed)} failed` : ""}${stats.held ? ` · ${n(stats.held)} held for their slot` : ""}`);
    setKpi("sharers", n(stats.sharers), `${percent.format(stats.share_rate)} share rate`);
    setKpi("share_clicks", n(stats.share_clicks), `${n(stats.bot_clicks)} bot clicks not counted`);
    setKpi("visits", n(stats.visits), `${n(stats.unique_visitors)} unique visitors`);
    setKpi("potential_reach", n(stats.potential_reach), "followers of the sharers");
    setKpi("emv", money(stats.emv, stats.currency), `${stats.currency} · visits × cost per click`);
    setKpi("conversions", n(stats.conversions), `${money(stats.conversion_value, stats.currency)} value`);

    $("network-rows").replaceChildren(
      ...Object.entries(stats.by_network).map(([network, counts]) =>
        el(
          "tr",
          { "data-network": network },
          el("th", { scope: "row" }, networkName(network)),
          el("td", { class: "num" }, n(counts.sharers)),
          el("td", { class: "num" }, n(counts.share_clicks)),
          el("td", { class: "num" }, n(counts.visits)),
          el("td", { class: "num" }, n(counts.unique_visitors)),
          el("td", { class: "num" }, money(counts.emv, stats.currency)),
          el("td", { class: "num" }, n(counts.conversions)),
        ),
      ),
    );
    const texts = new Map((campaign.messages || []).map((m) => [m.id, m.text]));
    $("message-rows").replaceChildren(
      ...stats.by_message.map((m) =>
        el(
          "tr",
          { "data-message-id": String(Number(m.message_id)) },
          el("th", { scope: "row", class: "message-text" }, `#${m.position + 1} ${texts.get(m.message_id) || ""}`),
          el("td", { class: "num" }, n(m.sharers)),
          el("td", { class: "num" }, n(m.share_clicks)),
          el("td", { class: "num" }, n(m.visits)),
          el("td", { class: "num" }, n(m.unique_visitors)),
          el("td", { class: "num" }, n(m.conversions)),
        ),
      ),
    );
  }

  // --- copy variants: the wordings of a message side by side, from its stats ------------------

  async function loadVariants(gen, campaign) {
    const varied = (campaign.messages || []).filter((m) => (m.variants || []).length > 0);
    $("variants-panel").hidden = varied.length === 0;
    const answers = await Promise.all(
      varied.map((m) => fetchChanged(`variants-${m.id}`, `/api/v1/messages/${m.id}/stats`, (r) => r.json())),
    );
    if (gen !== generation) return;
    const container = $("variant-messages");
    const shown = new Set(varied.map((m) => String(Number(m.id))));
    for (const section of [...container.children]) {
      if (!shown.has(section.dataset.messageId)) section.remove();
    }
    varied.forEach((message, index) => {
      if (answers[index] === null) return; // unchanged since the last poll
      const id = String(Number(message.id));
      const section = variantSection(message, answers[index].by_variant);
      const old = container.querySelector(`[data-message-id="${id}"]`);
      if (old) old.replaceWith(section);
      else container.append(section);
    });
  }

  function variantSection(message, variants) {
    const n = (value) => integer.format(value);
    const ratio = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
    // The leader: the best share rate among wordings somebody got, if it is ahead of the rest.
    const rates = variants.filter((v) => v.recipients > 0).map((v) => v.share_rate);
    const top = rates.length > 1 ? Math.max(...rates) : null;
    const leaders = top === null ? 0 : rates.filter((rate) => rate === top).length;
    const figure = (label, value) =>
      el("div", { class: "variant-figure" }, el("dt", {}, label), el("dd", { class: "num" }, value));
    return el(
      "section",
      { class: "variant-message", "data-message-id": String(Number(message.id)) },
      el("h3", {}, `#${message.position + 1}`),
      el(
        "div",
        { class: "variant-grid" },
        ...variants.map((v) =>
          el(
            "div",
            {
              class: top !== null && leaders === 1 && v.recipients > 0 && v.share_rate === top ? "variant best" : "variant",
              "data-variant": String(Number(v.variant)),
            },
            el("p", { class: "variant-label" }, v.variant === 0 ? "Base text" : `Variant ${v.variant}`),
            el("p", { class: "variant-text" }, v.text),
            el(
              "dl",
              { class: "variant-figures" },
              figure("Recipients", n(v.recipients)),
              figure("Sharers", n(v.sharers)),
              figure("Share rate", percent.format(v.share_rate)),
              figure("Share clicks", n(v.share_clicks)),
              figure("Visits", n(v.visits)),
              figure("Unique visitors", n(v.unique_visitors)),
              figure("Visits per share", ratio.format(v.visits_per_share)),
            ),
          ),
        ),
      ),
    );
  }

  function showSvg(container, markup) {
    const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
    const root = doc.documentElement;
    if (
      !root ||
      root.namespaceURI !== SVG_NS ||
      root.localName !== "svg" ||
      doc.getElementsByTagName("parsererror").length > 0
    ) {
      container.replaceChildren(el("p", { class: "chart-loading" }, "This chart could not be read."));
      return;
    }
    for (const active of root.querySelectorAll("script, foreignObject")) active.remove();
    container.replaceChildren(document.importNode(root, true));
  }

  async function loadChart(gen, name) {
    const markup = await fetchChanged(`chart-${name}`, chartUrl(name), (r) => r.text());
    if (markup === null || gen !== generation) return;
    showSvg($(`chart-${name}`), markup);
  }

  async function loadAmplifiers(gen, id) {
    const url = `/api/v1/campaigns/${id}/stats/amplifiers?limit=${TOP_AMPLIFIERS}`;
    const page = await fetchChanged("amplifiers", url, (r) => r.json());
    if (page === null || gen !== generation) return;
    const n = (value) => integer.format(value);
    const currency = current && current.stats ? current.stats.currency : "USD";
    $("amplifier-rows").replaceChildren(
      ...page.items.map((a, index) =>
        el(
          "tr",
          { "data-amplifier-id": String(Number(a.amplifier_id)) },
          el("td", { class: "num" }, String(index + 1)),
          el(
            "td",
            { class: "who" },
            el("span", { class: "who-name" }, a.name || "—"),
            el("span", { class: "who-email" }, a.email),
          ),
          el("td", { class: "num strong" }, n(a.points)),
          el("td", { class: "num" }, n(a.share_clicks)),
          el("td", { class: "num" }, n(a.visits)),
          el("td", { class: "num" }, n(a.unique_visitors)),
          el("td", { class: "num" }, n(a.conversions)),
          el("td", { class: "num" }, money(a.conversion_value, currency)),
        ),
      ),
    );
    $("amplifiers-empty").hidden = page.items.length > 0;
  }

  function reloadTimeseries() {
    if (current === null) return;
    const gen = generation;
    loadChart(gen, "visits").catch((error) => {
      if (gen === generation) handleError(error, $("campaign-error"));
    });
  }

  // --- organization overview -------------------------------------------------------------------

  function clearOverview() {
    $("chart-engagement").replaceChildren(el("p", { class: "chart-loading" }, "Loading chart…"));
    for (const id of ["month-rows", "team-rows", "compare-rows"]) $(id).replaceChildren();
    for (const id of ["months-empty", "teams-empty", "compare-empty"]) $(id).hidden = true;
    showNotice($("overview-error"), "");
  }

  function openOverview() {
    showView("view-overview");
    document.title = "Overview · Amplify dashboard";
    clearOverview();
    loadOverview(generation);
  }

  async function loadOverview(gen) {
    setStatus("Loading the overview…", "busy");
    try {
      await Promise.all([
        loadEngagementChart(gen),
        loadMonths(gen),
        loadTeams(gen),
        loadComparison(gen),
      ]);
      if (gen !== generation) return;
      showNotice($("overview-error"), "");
      setUpdated();
    } catch (error) {
      if (gen === generation) handleError(error, $("overview-error"));
    }
  }

  async function loadEngagementChart(gen) {
    const url = `/dashboard/charts/engagement.svg?${new URLSearchParams({ tz: timeZone })}`;
    const markup = await fetchChanged("chart-engagement", url, (r) => r.text());
    if (markup === null || gen !== generation) return;
    showSvg($("chart-engagement"), markup);
  }

  // Every item of a list route, following its cursor for a few pages.
  async function allItems(path, query) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < LIST_PAGES; page += 1) {
      const params = new URLSearchParams({ ...query, limit: "500" });
      if (cursor) params.set("cursor", cursor);
      const answer = await getJson(`${path}?${params}`);
      items.push(...answer.items);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  async function loadMonths(gen) {
    const query = new URLSearchParams({ interval: "month", tz: timeZone });
    const answer = await getJson(`/api/v1/engagement?${query}`);
    if (gen !== generation) return;
    // The chart's months: from the first one anybody was reached or shared in.
    const first = answer.points.findIndex((p) => p.reached > 0 || p.sharers > 0);
    const months = first < 0 ? [] : answer.points.slice(first).reverse();
    const n = (value) => integer.format(value);
    $("month-rows").replaceChildren(
      ...months.map((p) =>
        el(
          "tr",
          { "data-month": p.t.slice(0, 7) },
          el("th", { scope: "row", class: "nowrap" }, monthYear.format(new Date(p.t))),
          el("td", { class: "num" }, n(p.amplifiers)),
          el("td", { class: "num" }, n(p.reached)),
          el("td", { class: "num" }, n(p.sharers)),
          el("td", { class: "num strong" }, percent.format(p.engagement_index)),
          el("td", { class: "num" }, n(p.visits)),
        ),
      ),
    );
    $("months-empty").hidden = months.length > 0;
  }

  async function loadTeams(gen) {
    const days = Number($("teams-days").value) || 90;
    const since = new Date(Date.now() - days * DAY_MS).toISOString();
    const [teams, currency] = await Promise.all([
      allItems("/api/v1/engagement/tags", { since }),
      organizationCurrency(),
    ]);
    if (gen !== generation) return;
    const n = (value) => integer.format(value);
    $("team-rows").replaceChildren(
      ...teams.map((t) =>
        el(
          "tr",
          { "data-team": t.tag },
          el("th", { scope: "row" }, t.tag),
          el("td", { class: "num" }, n(t.amplifiers)),
          el("td", { class: "num" }, n(t.reached)),
          el("td", { class: "num" }, n(t.sharers)),
          el("td", { class: "num strong" }, percent.format(t.engagement_index)),
          el("td", { class: "num" }, n(t.share_clicks)),
          el("td", { class: "num" }, n(t.visits)),
          el("td", { class: "num" }, currency ? money(t.emv, currency) : decimal.format(t.emv)),
        ),
      ),
    );
    $("teams-empty").hidden = teams.length > 0;
  }

  // EMV of teams comes without a currency: it is the one of the organization's costs per click.
  async function organizationCurrency() {
    const rates = Object.values(await getJson("/api/v1/settings/cpc"));
    return rates.length ? rates[0].currency : null;
  }

  async function loadComparison(gen) {
    const campaigns = (await allItems("/api/v1/campaigns", {}))
      .filter((c) => c.status !== "draft" && c.status !== "scheduled")
      .sort((a, b) => latestFirst(a, b))
      .slice(0, COMPARED_CAMPAIGNS);
    const stats = await Promise.all(
      campaigns.map((c) => getJson(`/api/v1/campaigns/${Number(c.id)}/stats`)),
    );
    if (gen !== generation) return;
    const rows = campaigns.map((campaign, i) => comparisonRow(campaign, stats[i]));
    markBest(rows.map((row) => row.cells));
    $("compare-rows").replaceChildren(...rows.map((row) => row.tr));
    $("compare-empty").hidden = rows.length > 0;
  }

  function latestFirst(a, b) {
    const when = (c) => String(c.sent_at || c.created_at);
    return when(b).localeCompare(when(a)) || Number(b.id) - Number(a.id);
  }

  // A cell of a compared number: its value (null: not available, shown as "—") and its text.
  function measure(value, text) {
    const known = typeof value === "number" && Number.isFinite(value);
    return el("td", { class: "num", "data-value": known ? String(value) : "" }, known ? text(value) : "—");
  }

  function comparisonRow(campaign, stats) {
    const link = el("a", { href: `#/campaigns/${Number(campaign.id)}` }, campaign.name);
    const visitsPerShare = stats.share_clicks > 0 ? stats.visits / stats.share_clicks : null;
    // Conversions come with conversion tracking; until the stats carry them the column says "—".
    const cells = [
      measure(stats.share_rate, (v) => percent.format(v)),
      measure(visitsPerShare, (v) => decimal.format(v)),
      measure(stats.emv, (v) => money(v, stats.currency)),
      measure(stats.conversions, (v) => integer.format(v)),
      measure(stats.conversion_value, (v) => money(v, stats.currency)),
    ];
    const tr = el(
      "tr",
      { "data-campaign-id": String(Number(campaign.id)) },
      el("th", { scope: "row", class: "name" }, link),
      el("td", { class: "nowrap" }, formatDate(campaign.sent_at)),
      el("td", { class: "num" }, integer.format(stats.recipients)),
      ...cells,
    );
    return { tr, cells };
  }

  // Bold the highest value of each column (when it is above zero and there is a comparison).
  function markBest(rows) {
    if (rows.length < 2) return;
    for (let column = 0; column < rows[0].length; column += 1) {
      const values = rows.map((cells) => cells[column].dataset.value);
      const numbers = values.filter((v) => v !== "").map(Number);
      const best = Math.max(...numbers);
      if (!numbers.length || !(best > 0)) continue;
      for (const cells of rows) {
        const cell = cells[column];
        if (cell.dataset.value !== "" && Number(cell.dataset.value) === best) {
          cell.classList.add("best");
          cell.append(el("span", { class: "sr-only" }, " (best)"));
        }
      }
    }
  }

  // --- wiring -----------------------------------------------------------------------------------

  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("campaigns-refresh").addEventListener("click", route);
  $("campaigns-more").addEventListener("click", () => loadCampaigns(generation, listCursor));
  $("ts-metric").addEventListener("change", reloadTimeseries);
  $("ts-interval").addEventListener("change", reloadTimeseries);
  $("overview-refresh").addEventListener("click", route);
  $("teams-days").addEventListener("change", () => {
    const gen = generation;
    loadTeams(gen).catch((error) => {
      if (gen === generation) handleError(error, $("overview-error"));
    });
  });
  window.addEventListener("hashchange", route);
  route();
})();
