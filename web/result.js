// The result of a COMPLETED job, in words and pictures: the cutout, the photo with what the
// pipeline found drawn over it, the clothing colours, age and sex, and how sure it all is.

import { showAnnotatedPhoto } from "./photo-layers.js";

const FRAMING_WORDS = {
  full_body: "full body",
  upper_body: "upper body",
  head_and_shoulders: "head and shoulders",
  face_only: "face only",
};

const percent = (share) => `${Math.round(share * 100)}%`;

export function renderCompleted(result) {
  const view = document.getElementById("completed-view").content.cloneNode(true);
  const name = result.filename ?? "the photo";
  const { downloads } = result;

  const cutout = view.querySelector(".cutout");
  cutout.src = downloads.cutout.url;
  cutout.alt = `The person in ${name}, cut out of the background`;

  showAnnotatedPhoto(view.querySelector(".annotated-photo"), result, name);

  const colours = result.colors ?? [];
  view.querySelector(".swatches").append(...colours.map(swatch));
  if (result.colors_note || colours.length === 0) {
    const note = view.querySelector(".colours-note");
    note.textContent = result.colors_note ?? "No clothing colours were found.";
    note.hidden = false;
  }

  view.querySelector(".facts").append(...facts(result));

  const notes = result.quality?.notes ?? [];
  const noteItems = notes.length ? notes : ["Nothing flagged: every part of the result is reliable."];
  view.querySelector(".notes").append(...noteItems.map((text) => item(text)));
  return view;
}

function swatch(colour) {
  const element = item("");
  element.className = "swatch";
  const chip = document.createElement("span");
  chip.className = "chip";
  chip.style.backgroundColor = colour.hex;
  chip.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.textContent = `${colour.name} ${percent(colour.fraction)}`;
  const hex = document.createElement("span");
  hex.className = "hint";
  hex.textContent = colour.hex;
  element.append(chip, label, hex);
  return element;
}

function facts(result) {
  const { person, face } = result;
  const rows = [];
  if (person) {
    rows.push(["Person", `${percent(person.confidence)} sure, ${FRAMING_WORDS[person.framing]}`]);
  }
  rows.push(["Age", ageWords(face)], ["Sex", sexWords(face)]);
  return rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  });
}

function ageWords(face) {
  if (face?.status === "off") return "not estimated (face analysis off)";
  const range = face?.age?.status === "ok" ? face.age.range : null;
  return range ? `${range[0]}–${range[1]} years` : "unknown";
}

function sexWords(face) {
  if (face?.status === "off") return "not estimated (face analysis off)";
  const sex = face?.sex;
  if (!sex || sex.value === "unknown") return "unknown";
  return sex.confidence == null ? sex.value : `${sex.value} (${percent(sex.confidence)} sure)`;
}

function item(text) {
  const element = document.createElement("li");
  element.textContent = text;
  return element;
}
