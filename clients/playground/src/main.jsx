// The playground page's script: GraphiQL with the explorer plugin, configured by the JSON
// the gateway writes into the page (`#graphiql-config`): the GraphQL endpoint, one tab per
// example operation and the header callers send their key in.
import './workers.js';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { GraphiQL, HISTORY_PLUGIN } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './playground.css';

const config = JSON.parse(document.getElementById('graphiql-config').textContent);
const fetcher = createGraphiQLFetcher({ url: new URL(config.endpoint, window.location.href).toString() });
// The history is GraphiQL's default plugin, dropped when `plugins` is given.
const explorer = explorerPlugin();
const plugins = [HISTORY_PLUGIN, explorer];
// A first visit (no tabs in local storage yet) opens on the explorer, so people see they
// can click a query together. GraphiQL 5.4 fills the first tab's query from `defaultTabs`
// but not its variables: hand them over as the initial variables.
const firstVisit = window.localStorage.getItem('graphiql:tabs') === null;

createRoot(document.getElementById('graphiql')).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      plugins={plugins}
      defaultTabs={config.tabs}
      defaultHeaders={config.headers}
      initialVariables={firstVisit ? config.tabs[0]?.variables : undefined}
      visiblePlugin={firstVisit ? explorer : undefined}
      defaultEditorToolsVisibility={config.headers ? 'headers' : 'variables'}
    />
  </StrictMode>,
);
