//! The workflow screens of the local page, below the card panel, for the
//! person logged in with the acting card:
//!
//! - an assistant opens an encounter (registering the patient if new),
//!   writes a draft for one of the doctors they are linked to, and edits
//!   their pending drafts;
//! - a doctor, dentist or pharmacist sees the queue, reviews the exact bytes
//!   the card will sign (decoded as the UTF-8 text they are, with their
//!   SHA-256 computed in the page from those very bytes), and confirms one or
//!   several drafts with one entry of the signature PIN.
//!
//! - clinicians answer patients' correction requests against their
//!   institution's records: accepted with a correcting record, or
//!   rejected with the reason (FLOW-9);
//! - a clinician designated by IT staff breaks the glass in an emergency:
//!   patient ID, reason code and what the emergency is, then that patient's
//!   records from every institution while the access lasts (FLOW-7);
//! - above everything, banners: the gateway's operating mode when it is not
//!   normal (read-only, blocked) and each break-glass access in force.
//!
//! Every gateway call goes through the agent's `/ui/gateway/…` (the acting
//! card's session, CSRF-guarded); confirming goes through `/ui/confirm`, where
//! the agent fetches the bytes again and refuses to sign if they are not the
//! ones reviewed. The screens are cleared whenever the acting person changes
//! or the screen locks, so nothing of one person's work shows for another.

pub const STYLE: &str = r#"
#work h2{font-size:18px;margin:0 0 10px}
#work label{display:block;margin:8px 0}
#work input[type=text],#work select,#work textarea{font-size:16px;padding:6px 8px;width:100%;box-sizing:border-box}
#work textarea{min-height:6em;font-family:inherit}
.draft,.queued,.doc{border-top:1px solid #e1e6eb;padding:10px 0}
.meta{color:#5b6b7b;font-size:13px}
pre.document{white-space:pre-wrap;word-break:break-all;background:#f7f7f2;border:1px solid #c9c9b8;padding:8px;font-size:14px}
.digest{font-family:monospace;font-size:12px;color:#5b6b7b;word-break:break-all}
.work-message{margin:8px 0}
.banner{margin:0 0 10px;padding:10px 12px;border-radius:6px;font-weight:bold}
.banner.mode{background:#fff3cd;border:2px solid #b8860b;color:#5c4400}
.banner.bg{background:#fde2e1;border:2px solid #b3261e;color:#6b0f0a}
.bg-record{border-top:1px solid #e1e6eb;padding:8px 0}
"#;

pub const SCRIPT: &str = r#"
const W = T.work;
let who = null, wk = null;
function freshWork(){ return {encounter:null, doctors:[], drafts:[], queue:[], picked:{}, editing:null, review:null, results:null, status:null, bg:null, bgRecords:null, bgAsk:false, corrections:[], message:'', good:false, busy:false}; }
async function gw(method, path, body){
  const opts = {method, headers:{'X-CSRF-Token':CSRF,'X-Lang':LANG}};
  if(body!==undefined){ opts.headers['Content-Type']='application/json'; opts.body=JSON.stringify(body); }
  const r = await fetch('/ui/gateway/v1/'+path, opts);
  let j = {}; try { j = await r.json(); } catch(e) {}
  return {ok:r.ok, status:r.status, body:j};
}
function failure(res){ const b=res.body||{}; return (b.message||('HTTP '+res.status))+(b.error?' ['+b.error+']':''); }
function say(text, good){ wk.message=text; wk.good=!!good; }
function actingPerson(){
  if(!state || state.locked) return null;
  const r = state.readers.find(x=>x.reader===state.active_reader);
  return r && r.card && r.card.session ? r.card.session.person : null;
}
function isSigner(p){ return p && ['doctor','dentist','pharmacist'].includes(p.role); }
// The roles the gateway's role table lets break the glass; the person must
// also be designated (the gateway says so when not).
function isClinician(p){ return p && ['doctor','dentist','pharmacist','nurse'].includes(p.role); }
// The roles that answer patients' correction requests (HandleCorrections).
function answersCorrections(p){ return p && ['doctor','dentist','pharmacist','nurse','dietitian'].includes(p.role); }
function text(content){ return content && typeof content.text==='string' ? content.text : JSON.stringify(content); }
function syncWork(){
  const p = actingPerson(), key = p ? p.id+'|'+p.role : null;
  if(key===who) return;
  who = key; wk = freshWork();
  if(!p){ document.getElementById('work').innerHTML=''; return; }
  refresh();
}
async function refresh(){
  const p = actingPerson(); if(!p) return;
  // Also called again when a login's answer arrives (`ui_page`): the state
  // poll can show the new session before that answer has given the page
  // its proof cookie, and these loads fail without it.
  await refreshStatus();
  if(answersCorrections(p)){ const c = await gw('GET','corrections'); if(c.ok) wk.corrections=c.body.corrections; }
  if(p.role==='assistant'){
    const d = await gw('GET','doctors'); if(d.ok) wk.doctors=d.body.doctors; else say(failure(d));
    const m = await gw('GET','drafts'); if(m.ok) wk.drafts=m.body.drafts; else say(failure(m));
  } else if(isSigner(p)){
    const q = await gw('GET','queue'); if(q.ok) wk.queue=q.body.drafts; else say(failure(q));
  }
  renderWork();
}
// The mode and one's break-glass accesses: at each refresh and every
// minute, so a change of mode reaches a screen left open.
async function refreshStatus(){
  const s = await gw('GET','status');
  if(s.ok && wk) wk.status = s.body;
}
setInterval(async()=>{ if(actingPerson() && wk && !wk.busy){ await refreshStatus(); renderWork(); } }, 60000);
function bannerHtml(){
  const s = wk.status; if(!s) return '';
  let h = '';
  if(s.mode!=='normal'){
    h += '<div class="banner mode" id="mode-banner" data-mode="'+esc(s.mode)+'" role="alert">'+
         esc((s.mode==='blocked'?W.mode_blocked:W.mode_read_only).replace('{reason}', s.mode_reason))+'</div>';
  }
  for(const a of s.break_glass){
    h += '<div class="banner bg break-glass-banner" data-id="'+esc(a.id)+'" role="alert">'+
         esc(W.break_glass_banner.replace('{patient}', a.patient).replace('{until}', a.expires_at))+'</div>';
  }
  return h;
}
function breakGlassHtml(){
  let h = '<section class="card" id="break-glass-panel"><h2>'+esc(W.break_glass)+'</h2>';
  if(wk.bg){
    h += '<div class="meta">'+esc(W.patient_id)+' <b id="bg-patient-shown">'+esc(wk.bg.patient)+'</b> · '+esc(W.break_glass_until)+' '+esc(wk.bg.expires_at)+'</div>';
    h += '<div id="break-glass-records">';
    const recs = wk.bgRecords || [];
    if(recs.length===0) h += '<div class="meta">'+esc(W.none)+'</div>';
    for(const r of recs){
      h += '<div class="bg-record" data-id="'+esc(r.id)+'"><div class="meta">'+esc(r.institution)+' · '+esc(r.kind)+' · '+esc(r.created_at)+'</div>'+
           '<div class="record-content">'+esc(text(r.content))+'</div></div>';
    }
    h += '</div><button class="secondary" id="break-glass-end">'+esc(W.break_glass_end)+'</button>';
    return h+'</section>';
  }
  const active = (wk.status && wk.status.break_glass) || [];
  for(const a of active){
    h += '<div class="queued">'+esc(W.patient_id)+' '+esc(a.patient)+' · '+esc(W.break_glass_until)+' '+esc(a.expires_at)+
         ' <button class="bg-open" data-id="'+esc(a.id)+'">'+esc(W.break_glass_open)+'</button></div>';
  }
  const reasons = ['emergency_treatment','disaster','other'];
  // Closed until asked for (an emergency is rare; everyday work comes
  // first), and kept as the person left it across redraws.
  h += '<details id="break-glass-ask"'+(wk.bgAsk?' open':'')+'><summary>'+esc(W.break_glass_ask)+'</summary><p class="meta">'+esc(W.break_glass_explain)+'</p>'+
       '<form id="break-glass-form"><label>'+esc(W.patient_id)+' <input type="text" id="bg-patient" data-k="bg-patient"></label>'+
       '<label>'+esc(W.break_glass_reason)+' <select id="bg-reason" data-k="bg-reason"><option value="">—</option>'+
       reasons.map(r=>'<option value="'+r+'">'+esc(W['reason_'+r])+'</option>').join('')+'</select></label>'+
       '<label>'+esc(W.break_glass_detail)+' <textarea id="bg-detail" data-k="bg-detail"></textarea></label>'+
       '<button type="submit" id="break-glass-start">'+esc(W.break_glass_start)+'</button></form></details>';
  return h+'</section>';
}
function correctionsHtml(){
  let h = '<section class="card" id="corrections-panel"><h2>'+esc(W.corrections)+'</h2>';
  if(wk.corrections.length===0) return h+'<div class="meta">'+esc(W.none)+'</div></section>';
  for(const c of wk.corrections){
    h += '<div class="queued correction" data-id="'+esc(c.id)+'"><div class="meta">'+esc(W.patient_id)+' '+esc(c.patient)+' · '+esc(W.record)+' '+esc(c.record)+' · '+esc(c.requested_at)+'</div>'+
         '<div class="draft-text">'+esc(c.text)+'</div>'+
         '<textarea class="correction-answer" data-k="answer-'+esc(c.id)+'" placeholder="'+esc(W.correction_answer)+'"></textarea>'+
         '<button class="correction-accept" data-id="'+esc(c.id)+'">'+esc(W.correction_accept)+'</button>'+
         '<button class="secondary correction-reject" data-id="'+esc(c.id)+'">'+esc(W.correction_reject)+'</button></div>';
  }
  return h+'</section>';
}
async function answerCorrection(e, decision){
  const text = e.parentElement.querySelector('textarea.correction-answer').value.trim();
  if(!text){ say(W.correction_answer_empty); return; }
  const res = await gw('POST','corrections/'+encodeURIComponent(e.dataset.id)+'/resolve',{decision, text});
  if(res.ok){ say(decision==='accepted' ? W.correction_accepted.replace('{id}', res.body.correction_record) : W.correction_rejected, true); await refresh(); }
  else say(failure(res));
}
async function openBreakGlass(access){
  const r = await gw('GET','break-glass/'+encodeURIComponent(access.id)+'/records');
  if(r.ok){ wk.bg = access; wk.bgRecords = r.body.records; }
  else { wk.bg = null; wk.bgRecords = null; say(failure(r)); await refreshStatus(); }
}
function doctorName(id){ const d=wk.doctors.find(x=>x.id===id); return d ? (d.name_kanji||d.name)+' ('+id+')' : id; }
function messageHtml(){ return wk.message ? '<div class="work-message '+(wk.good?'ok':'error')+'" role="status">'+esc(wk.message)+'</div>' : ''; }
function assistantHtml(){
  let h = '<section class="card" id="patient-panel"><h2>'+esc(W.encounter)+'</h2>';
  if(!wk.encounter){
    h += '<form id="open-encounter"><label>'+esc(W.patient_id)+' <input type="text" id="patient-id" data-k="patient-id"></label>'+
         '<button type="submit" id="open-encounter-button">'+esc(W.open_encounter)+'</button></form>';
    h += '<details id="new-patient"><summary>'+esc(W.new_patient)+'</summary><form id="register-patient">'+
         '<label>'+esc(W.patient_name)+' <input type="text" id="patient-name" data-k="patient-name"></label>'+
         '<label>'+esc(W.patient_name_kanji)+' <input type="text" id="patient-name-kanji" data-k="patient-name-kanji"></label>'+
         '<label>'+esc(W.birth_date)+' <input type="text" id="patient-birth-date" placeholder="YYYY-MM-DD" data-k="patient-birth-date"></label>'+
         '<button type="submit" id="register-patient-button">'+esc(W.register_patient)+'</button></form></details>';
  } else {
    const e = wk.encounter;
    h += '<div class="encounter" data-id="'+esc(e.id)+'">'+esc(W.patient_id)+': <b class="encounter-patient">'+esc(e.patient)+'</b> — '+
         esc(W.open_until)+' '+esc(e.expires_at)+'</div><button class="secondary" id="close-encounter">'+esc(W.close_encounter)+'</button>';
  }
  h += '</section>';
  if(wk.encounter){
    h += '<section class="card" id="draft-panel"><h2>'+esc(W.new_draft)+'</h2>';
    if(wk.doctors.length===0) h += '<div class="error">'+esc(W.no_doctors)+'</div>';
    else {
      h += '<form id="new-draft"><label>'+esc(W.doctor)+' <select id="draft-doctor" data-k="draft-doctor">'+
           wk.doctors.map(d=>'<option value="'+esc(d.id)+'">'+esc(doctorName(d.id))+'</option>').join('')+'</select></label>'+
           '<label>'+esc(W.content)+' <textarea id="draft-text" data-k="draft-text"></textarea></label>'+
           '<button type="submit" id="save-draft">'+esc(W.save_draft)+'</button></form>';
    }
    h += '</section>';
  }
  h += '<section class="card" id="my-drafts"><h2>'+esc(W.my_drafts)+'</h2>';
  if(wk.drafts.length===0) h += '<div class="meta">'+esc(W.none)+'</div>';
  for(const d of wk.drafts){
    h += '<div class="draft" data-id="'+esc(d.id)+'"><div class="meta">'+esc(W.patient_id)+' '+esc(d.patient)+' · '+esc(W.doctor)+' '+esc(doctorName(d.signer))+
         ' · '+esc(W.version)+' <span class="version">'+esc(d.version)+'</span></div>';
    if(wk.editing===d.id){
      h += '<textarea class="edit-text" data-k="edit-'+esc(d.id)+'">'+esc(text(d.content))+'</textarea>'+
           '<button class="save-edit" data-id="'+esc(d.id)+'">'+esc(W.save_edit)+'</button><button class="secondary cancel-edit">'+esc(W.cancel)+'</button>';
    } else {
      h += '<div class="draft-text">'+esc(text(d.content))+'</div><button class="secondary edit" data-id="'+esc(d.id)+'">'+esc(W.edit)+'</button>';
    }
    h += '</div>';
  }
  return h+'</section>';
}
function signerHtml(){
  if(wk.review){
    let h = '<section class="card" id="review"><h2>'+esc(W.review)+'</h2><p>'+esc(W.review_explain)+'</p>';
    for(const r of wk.review){
      h += '<div class="doc" data-id="'+esc(r.draft)+'"><div class="meta">'+esc(W.draft)+' '+esc(r.draft)+' · '+esc(W.version)+' '+esc(r.version)+'</div>'+
           '<pre class="document">'+esc(r.text)+'</pre><div class="digest">SHA-256 '+esc(r.sha256)+'</div></div>';
    }
    if(wk.results){
      h += '<div id="results">';
      for(const x of wk.results){
        h += x.record ? '<div class="ok result" data-draft="'+esc(x.draft)+'">'+esc(W.confirmed)+': <span class="record-id">'+esc(x.record)+'</span></div>'
                      : '<div class="error result" data-draft="'+esc(x.draft)+'">'+esc(x.draft)+': '+esc(x.error)+'</div>';
      }
      h += '</div><button id="back-to-queue">'+esc(W.back)+'</button>';
    } else {
      h += '<form id="sign"><label>'+esc(W.signature_pin)+' <input class="sigpin" type="password" inputmode="numeric" autocomplete="off" id="signature-pin"></label>'+
           '<button type="submit" id="sign-and-confirm"'+(wk.busy?' disabled':'')+'>'+esc(W.sign_confirm.replace('{n}', wk.review.length))+'</button>'+
           '<button type="button" class="secondary" id="back-to-queue">'+esc(W.back)+'</button></form>';
    }
    return h+'</section>';
  }
  let h = '<section class="card" id="queue"><h2>'+esc(W.queue)+'</h2>';
  if(wk.queue.length===0) h += '<div class="meta" id="queue-empty">'+esc(W.queue_empty)+'</div>';
  for(const d of wk.queue){
    h += '<div class="queued" data-id="'+esc(d.id)+'"><label><input type="checkbox" class="pick" data-id="'+esc(d.id)+'"'+(wk.picked[d.id]?' checked':'')+'> '+
         esc(W.patient_id)+' '+esc(d.patient)+' · '+esc(W.author)+' '+esc(d.assistant)+' · '+esc(W.version)+' '+esc(d.version)+'</label>'+
         '<div class="draft-text">'+esc(text(d.content))+'</div><button class="review-one" data-id="'+esc(d.id)+'">'+esc(W.review_one)+'</button></div>';
  }
  if(wk.queue.length>0) h += '<button id="review-picked">'+esc(W.review_picked)+'</button>';
  return h+'<button class="secondary" id="refresh-queue">'+esc(W.refresh)+'</button></section>';
}
function renderWork(){
  const p = actingPerson(), box = document.getElementById('work');
  if(!p || !wk) { box.innerHTML=''; return; }
  const saved = {};
  box.querySelectorAll('[data-k]').forEach(i=>{ saved[i.dataset.k]=i.value; });
  let h = bannerHtml() + messageHtml();
  if(p.role==='assistant') h += assistantHtml();
  else if(isSigner(p)) h += signerHtml();
  if(answersCorrections(p) && !wk.review) h += correctionsHtml();
  if(isClinician(p) && !wk.review) h += breakGlassHtml();
  box.innerHTML = h;
  box.querySelectorAll('[data-k]').forEach(i=>{ if(saved[i.dataset.k]!==undefined && i.tagName!=='SELECT') i.value=saved[i.dataset.k]; else if(i.tagName==='SELECT' && saved[i.dataset.k]) i.value=saved[i.dataset.k]; });
  bindWork(box);
}
function on(box, sel, ev, fn){ box.querySelectorAll(sel).forEach(e=>e.addEventListener(ev, async x=>{ x.preventDefault(); if(wk.busy) return; wk.busy=true; try{ await fn(e); } finally { wk.busy=false; renderWork(); } })); }
function val(id){ const e=document.getElementById(id); return e ? e.value.trim() : ''; }
function bindWork(box){
  const ask = box.querySelector('#break-glass-ask');
  if(ask) ask.addEventListener('toggle',()=>{ wk.bgAsk = ask.open; });
  on(box,'button.correction-accept','click',async e=>{ await answerCorrection(e,'accepted'); });
  on(box,'button.correction-reject','click',async e=>{ await answerCorrection(e,'rejected'); });
  on(box,'#break-glass-form','submit',async()=>{
    const body = {patient:val('bg-patient')};
    if(val('bg-reason')) body.reason = val('bg-reason');
    if(val('bg-detail')) body.detail = val('bg-detail');
    const res = await gw('POST','break-glass',body);
    if(!res.ok){ say(failure(res)); return; }
    await refreshStatus();
    await openBreakGlass(res.body);
    if(wk.bg){ say(W.break_glass_started.replace('{patient}', res.body.patient), true); document.getElementById('bg-detail').value=''; }
  });
  on(box,'button.bg-open','click',async e=>{
    const a = ((wk.status && wk.status.break_glass) || []).find(x=>x.id===e.dataset.id);
    if(a){ wk.message=''; await openBreakGlass(a); }
  });
  on(box,'#break-glass-end','click',async()=>{
    const res = await gw('POST','break-glass/'+encodeURIComponent(wk.bg.id)+'/end',{});
    wk.bg = null; wk.bgRecords = null;
    if(res.ok) say(W.break_glass_ended, true); else say(failure(res));
    await refreshStatus();
  });
  on(box,'#open-encounter','submit',async()=>{
    const res = await gw('POST','encounters',{patient:val('patient-id')});
    if(res.ok){ wk.encounter=res.body; say(W.encounter_opened, true); } else say(failure(res));
  });
  on(box,'#register-patient','submit',async()=>{
    const body = {name:val('patient-name'), birth_date:val('patient-birth-date')};
    if(val('patient-name-kanji')) body.name_kanji = val('patient-name-kanji');
    const res = await gw('POST','patients',body);
    if(res.ok){ document.getElementById('patient-id').value=res.body.id; say(W.patient_registered.replace('{id}',res.body.id), true); } else say(failure(res));
  });
  on(box,'#close-encounter','click',async()=>{
    const res = await gw('POST','encounters/'+encodeURIComponent(wk.encounter.id)+'/close',{});
    if(res.ok){ wk.encounter=null; say(W.encounter_closed, true); } else say(failure(res));
  });
  on(box,'#new-draft','submit',async()=>{
    const t = val('draft-text');
    if(!t){ say(W.content_empty); return; }
    const res = await gw('POST','drafts',{encounter:wk.encounter.id, doctor:val('draft-doctor'), content:{text:t}});
    if(res.ok){ document.getElementById('draft-text').value=''; say(W.draft_saved.replace('{id}',res.body.id), true); await refresh(); } else say(failure(res));
  });
  on(box,'button.edit','click',async e=>{ wk.editing=e.dataset.id; wk.message=''; });
  on(box,'button.cancel-edit','click',async()=>{ wk.editing=null; });
  on(box,'button.save-edit','click',async e=>{
    const d = wk.drafts.find(x=>x.id===e.dataset.id);
    const t = e.parentElement.querySelector('textarea.edit-text').value.trim();
    if(!t){ say(W.content_empty); return; }
    const res = await gw('PUT','drafts/'+encodeURIComponent(d.id),{version:d.version, content:{text:t}});
    if(res.ok){ wk.editing=null; say(W.draft_edited.replace('{v}',res.body.version), true); await refresh(); } else say(failure(res));
  });
  box.querySelectorAll('input.pick').forEach(c=>c.addEventListener('change',()=>{ wk.picked[c.dataset.id]=c.checked; }));
  on(box,'#refresh-queue','click',async()=>{ wk.message=''; await refresh(); });
  on(box,'button.review-one','click',async e=>{ await review([e.dataset.id]); });
  on(box,'#review-picked','click',async()=>{
    const ids = wk.queue.map(d=>d.id).filter(id=>wk.picked[id]);
    if(ids.length===0){ say(W.pick_some); return; }
    await review(ids);
  });
  on(box,'#back-to-queue','click',async()=>{ wk.review=null; wk.results=null; wk.picked={}; wk.message=''; await refresh(); });
  on(box,'#sign','submit',async()=>{
    const pin = document.getElementById('signature-pin');
    const items = wk.review.map(r=>({draft:r.draft, version:r.version, sha256:r.sha256}));
    renderBusy();
    const res = await call('/ui/confirm',{items, pin:pin.value});
    if(!res.ok){ say(failure(res)); return; }
    const j = res.body;
    pin.value='';
    wk.results = j.results ? j.results.map(x=>({draft:x.draft, record:x.record&&x.record.id, error:x.error&&(x.error.message+' ['+x.error.error+']')}))
                           : [{draft:items[0].draft, record:j.id}];
    const failed = wk.results.filter(x=>!x.record).length;
    say(failed ? W.some_failed.replace('{n}',failed) : W.all_confirmed, !failed);
  });
}
function renderBusy(){ const b=document.getElementById('sign-and-confirm'); if(b) b.disabled=true; }
// The bytes the card will sign, as the gateway gives them: shown as the
// UTF-8 text they are, and hashed here, so the digest sent back to the agent
// is that of what the doctor read.
async function review(ids){
  const out = [];
  for(const id of ids){
    const d = wk.queue.find(x=>x.id===id);
    const res = await gw('GET','drafts/'+encodeURIComponent(id)+'/signing-bytes?version='+d.version);
    if(!res.ok){ say(failure(res)); return; }
    const bytes = Uint8Array.from(atob(res.body.document), c=>c.charCodeAt(0));
    let shownText;
    try { shownText = new TextDecoder('utf-8',{fatal:true}).decode(bytes); } catch(e) { say(W.bad_document); return; }
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))).map(b=>b.toString(16).padStart(2,'0')).join('');
    if(digest!==res.body.sha256.toLowerCase()){ say(W.bad_document); return; }
    out.push({draft:id, version:res.body.version, text:shownText, sha256:digest});
  }
  wk.review = out; wk.results = null; wk.message='';
}
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn the_screens_reach_the_gateway_only_through_the_agent() {
        // No absolute URL: everything goes to this agent's /ui/ routes.
        assert!(!super::SCRIPT.contains("http://") && !super::SCRIPT.contains("https://"));
        assert!(super::SCRIPT.contains("'/ui/gateway/v1/'") && super::SCRIPT.contains("'/ui/confirm'"));
    }

    #[test]
    fn every_break_glass_reason_has_its_label() {
        let strings = crate::i18n::ui_strings(crate::i18n::Lang::Ja);
        for r in hpki_protocol::emergency::BreakGlassReason::ALL {
            assert!(super::SCRIPT.contains(&format!("'{}'", r.as_str())), "{r} is offered");
            assert!(strings["work"][format!("reason_{r}")].is_string(), "{r} has a label");
        }
    }
}
