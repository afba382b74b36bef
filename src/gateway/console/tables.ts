import { html, type SafeHtml } from "./html.js";

/** A column of a `dataTable`: its heading, and what each row shows in it. */
export interface Column<Row> {
  heading: string;
  cell: (row: Row) => SafeHtml | string;
  cellClass?: string;
}

function td(content: unknown, cellClass?: string): SafeHtml {
  return cellClass === undefined ? html`<td>${content}</td>` : html`<td class="${cellClass}">${content}</td>`;
}

/** A table with a heading per column and a row per item. */
export function dataTable<Row>(caption: string, columns: Column<Row>[], rows: readonly Row[]): SafeHtml {
  return html`<table>
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        ${columns.map((column) => html`<th scope="col">${column.heading}</th> `)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) =>
          html`<tr>
            ${columns.map((column) => html`${td(column.cell(row), column.cellClass)} `)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** One item's fields, a heading per row. */
export type Field = readonly [heading: string, value: SafeHtml | string | number, cellClass?: string];

export function fieldTable(fields: readonly Field[], caption?: string): SafeHtml {
  return html`<table>
    ${
      caption === undefined
        ? ""
        : html`<caption>
            ${caption}
          </caption>`
    }
    <tbody>
      ${fields.map(
        ([heading, value, cellClass]) =>
          html`<tr>
            <th scope="row">${heading}</th>
            ${td(value, cellClass)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}
