/* How the page renders markdown a model wrote. A model can be made to write anything (prompt
 * injection), so an answer is untrusted: raw HTML in it stays text (no rehype-raw), a link
 * shows where it goes and opens apart from the page, and an image loads only from the page's
 * own origin, a data: URL or a host in ANSWER_IMAGE_HOSTS; any other is a link to it, since
 * loading it would send the image's URL (and whatever the answer put into it) to that host.
 * The Content-Security-Policy (security.py) allows the same images. Wrapped in untrusted.py. */
import { Link } from "@radix-ui/themes";
import { defaultUrlTransform } from "react-markdown";

const LINK_PROTOCOLS = ["http:", "https:", "mailto:"];
const IMAGE_STYLE = { maxWidth: "100%" };

function parse(address) {
  try {
    return address ? new URL(address, window.location.href) : null;
  } catch {
    return null;
  }
}

function hostOf(text) {
  try {
    return new URL(text).host;
  } catch {
    return null;
  }
}

function isAllowedHost(host, allowedHosts) {
  return allowedHosts.some((allowed) =>
    allowed.startsWith("*.") ? host.endsWith(allowed.slice(1)) : host === allowed,
  );
}

/* react-markdown's own filter of addresses (no javascript: and the like), letting data: images
 * through as well. */
export function keepSafeUrl(address, key) {
  return key === "src" && /^data:image\//i.test(address)
    ? address
    : defaultUrlTransform(address);
}

export function AnswerLink({ href, title, children }) {
  const url = parse(href);
  if (!url || !LINK_PROTOCOLS.includes(url.protocol)) return <span>{children}</span>;
  const destination = url.protocol === "mailto:" ? url.pathname : url.host;
  // Said already only by text that is that very address or host: "bank.example" over a link to
  // another host still shows where it goes.
  const textSaysIt =
    typeof children === "string" &&
    (children === destination || hostOf(children) === destination);
  return (
    <>
      <Link
        href={url.href}
        title={title}
        target="_blank"
        rel="noopener noreferrer"
        underline="always"
      >
        {children}
      </Link>
      {textSaysIt ? null : <span className="link-destination"> ({destination})</span>}
    </>
  );
}

export function AnswerImage({ src, alt, title, allowedHosts }) {
  const url = parse(src);
  const allowed =
    url &&
    (url.protocol === "data:" ||
      url.origin === window.location.origin ||
      (["http:", "https:"].includes(url.protocol) && isAllowedHost(url.host, allowedHosts)));
  if (allowed) {
    return <img src={url.href} alt={alt ?? ""} title={title} style={IMAGE_STYLE} />;
  }
  const label = `Image: ${alt || "untitled"}`;
  if (!url || !["http:", "https:"].includes(url.protocol)) return <span>[{label}]</span>;
  return (
    <Link
      className="remote-image"
      href={url.href}
      title={`Opens ${url.href} in a new tab`}
      target="_blank"
      rel="noopener noreferrer"
      underline="always"
    >
      [{label}] ({url.host})
    </Link>
  );
}
