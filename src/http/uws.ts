/**
 * The one module that imports uWebSockets.js (the registry package is an
 * alias: see package.json), so that a change of build touches one file.
 */
import uws from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket as ListenSocket } from 'uWebSockets.js';

export const App = uws.App;
export const closeListenSocket = uws.us_listen_socket_close;
export const listenPort = uws.us_socket_local_port;
