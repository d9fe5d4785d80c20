/**
 * What a `retry` event tries again, in the words the renderers print: the core reports a
 * typed subject (see `RetrySubject`), and the wording lives here, with the renderers.
 */
import type { RetrySubject } from "../../progress/events.ts";

/** `blob sha256:…`, `chunk at 1048576 of sha256:…`, or the request's own description. */
export function retryText(subject: RetrySubject): string {
  switch (subject.kind) {
    case "request":
      return subject.action;
    case "blob":
      return `blob ${subject.digest}`;
    case "download":
      return `download blob ${subject.digest}`;
    case "chunk":
      return `chunk at ${subject.offset} of ${subject.digest}`;
    case "segment":
      return `${subject.blob} from byte ${subject.offset}`;
  }
}
