/*
 * mailconnect — the host-owned token store.
 *
 * For hosts that keep mailconnect's records in their own database (an ERP's SQL server, say)
 * instead of the SQLite or PostgreSQL store mailconnect brings. The host implements four
 * callbacks (mc_store_callbacks) over opaque, encrypted blobs and opens the client with
 * mc_client_open_with_store; everything else is mailconnect.h. Most hosts do not need this file.
 */
