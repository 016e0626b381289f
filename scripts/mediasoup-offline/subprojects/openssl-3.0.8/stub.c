/* Intentionally empty: stub static library for mediasoup link_whole (offline build wraps the Debian shared library). */
