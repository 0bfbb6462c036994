/** What both studio pages do with the document: find elements, show a message, save bytes as a download. */

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The page's `#message` box: `show` records the text in `errors` (scripted use reads them) and shows it. */
export function messageBox(errors: string[]): { show(message: string): void; clear(): void } {
  return {
    show(message) {
      errors.push(message);
      const box = $("message");
      box.textContent = message;
      box.hidden = false;
    },
    clear: () => ($("message").hidden = true),
  };
}

/** Save `bytes` as the file `name` through the browser's download. */
export function download(name: string, bytes: Uint8Array): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart]));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
