/**
 * The one module that imports uWebSockets.js (the registry package is an
 * alias: see package.json), so that a change of build touches one file.
 */
import uws from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket as ListenSocket } from 'uWebSockets.js';

export const App = uws.App;

/**
 * uWS listens with SO_REUSEPORT by default, so a second server on a port in
 * use would share it silently; this option makes that a failure instead.
 * (The 4-argument listen(host, port, options, cb) is missing from the typings.)
 */
export const LISTEN_EXCLUSIVE_PORT = 1;
export const closeListenSocket = uws.us_listen_socket_close;
export const listenPort = uws.us_socket_local_port;
