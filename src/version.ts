/** The program's name and version, shown by `--version` and sent as the User-Agent. */
export const NAME = "docker-image-pusher";
export const VERSION = "0.1.0";
